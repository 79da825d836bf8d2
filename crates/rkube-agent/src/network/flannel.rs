//! The flannel path (vxlan, host-gw): the subnet manager (etcd in flannel's layout, or the node's
//! `spec.podCIDR` with flannel's node annotations), then `rkube_net::run` as a part of the agent, waited on
//! until the node holds its lease and the conflist, subnet.env and docker options are written.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::api::{Api, Patch, PatchParams};
use rkube_net::config::NetConfig;
use rkube_net::files::{CONFLIST_NAME, NodeFiles};
use rkube_net::subnet::{EtcdSubnetManager, KubeSubnetManager, SubnetError, SubnetManager};
use rkube_net::uplink::UplinkChoice;
use rkube_net::{NetOptions, NodeNetwork};
use tokio::sync::{oneshot, watch};

use super::PodNetwork;
use crate::cni::PodCidr;
use crate::config::AgentConfig;
use crate::run::Parts;
use crate::{Error, Result};

const PART: &str = "the pod network";
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Starts the flannel-compatible network with `net` (the flags' config) and waits until it is up.
pub(super) async fn start(
    config: &AgentConfig,
    net: &NetConfig,
    client: &kube::Client,
    parts: &mut Parts,
    parts_stop: watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> Result<PodNetwork> {
    let flags = &config.network.flags;
    let using_etcd = !flags.etcd_endpoints.is_empty();
    let subnets: Arc<dyn SubnetManager> = if using_etcd {
        Arc::new(etcd_manager(&flags.etcd_endpoints, &flags.etcd_prefix, net, stop).await?)
    } else {
        Arc::new(KubeSubnetManager::new(client.clone(), &config.node_name, net.clone()))
    };
    let conf_dir = config.cni_conf_dir();
    // A conflist left from `--flannel-backend none` would have containerd give pods the old node-local range.
    let old = conf_dir.join(crate::cni::CONFLIST);
    match std::fs::remove_file(&old) {
        Ok(()) => tracing::info!(path = %old.display(), "removed the node-local CNI configuration"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", old.display()))(e)),
    }
    let opts = NetOptions {
        uplink: UplinkChoice { iface: flags.iface.clone(), iface_regex: flags.iface_regex.clone() },
        files: NodeFiles {
            cni_conflist: Some(conf_dir.join(CONFLIST_NAME)),
            ipam_data_dir: Some(config.cni_ipam_dir()),
            subnet_env: Some(flags.subnet_env.clone()),
            docker_opts: Some(flags.docker_opts.clone()),
        },
        iptables: true,
        sysctls: true,
        // A restarting agent keeps flannel.1, the routes and the rules: its pods stay connected meanwhile.
        cleanup_on_stop: false,
    };
    let (up_tx, up_rx) = oneshot::channel();
    let mut net_stop = parts_stop;
    parts.spawn(async move {
        let stopped = async move { crate::stopped(&mut net_stop).await };
        let r = rkube_net::run(opts, subnets, stopped, up_tx).await;
        (PART, r.map(|_| ()).map_err(|e| Error::Network(e.to_string())))
    });
    let up = wait_up(parts, up_rx, stop).await?;
    let pod_cidr = PodCidr::parse(&up.lease.subnet.to_string())?;
    if up.config != *net {
        tracing::warn!(
            stored = %up.config.to_json(),
            flags = %net.to_json(),
            "the network config in etcd differs from --cluster-cidr/--node-cidr-mask-size/--flannel-backend; etcd's wins (as with flannel)"
        );
    }
    if using_etcd {
        reconcile_pod_cidr(client, &config.node_name, &pod_cidr).await;
    }
    report_warnings(client, &config.node_name, &up.warnings).await;
    tracing::info!(
        subnet = %up.lease.subnet,
        public_ip = %up.lease.attrs.public_ip,
        uplink = %up.uplink.name,
        mtu = up.mtu,
        backend = up.config.backend.type_name(),
        leases = if using_etcd { "etcd" } else { "node spec.podCIDR" },
        "the node holds its pod subnet"
    );
    Ok(PodNetwork { pod_cidr, cluster_cidr: up.config.network.to_string() })
}

/// The etcd subnet manager, with `<prefix>/config` written from the flags when absent (retried while etcd is
/// unreachable; a stop ends the wait).
async fn etcd_manager(
    endpoints: &[String],
    prefix: &str,
    net: &NetConfig,
    stop: &mut watch::Receiver<bool>,
) -> Result<EtcdSubnetManager> {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
    let client = etcd_client::Client::connect(endpoints, Some(opts))
        .await
        .map_err(|e| Error::Network(format!("etcd {}: {e}", endpoints.join(","))))?;
    let manager = EtcdSubnetManager::new(client, prefix);
    let mut delay = Duration::from_millis(500);
    loop {
        match manager.put_config_if_absent(net).await {
            Ok(true) => {
                tracing::info!(key = %format!("{}/config", prefix.trim_end_matches('/')), config = %net.to_json(), "stored the network config in etcd");
                return Ok(manager);
            }
            Ok(false) => return Ok(manager),
            Err(e @ SubnetError::Etcd { .. }) => {
                tracing::warn!(error = %e, endpoints = %endpoints.join(","), "etcd is not reachable yet; retrying in {delay:?}");
            }
            Err(e) => return Err(Error::Network(e.to_string())),
        }
        if crate::sleep_or_stop(delay, stop).await {
            return Err(Error::Cancelled);
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Waits for the network's readiness, failing if it (or another part) ends first or the agent is stopped.
async fn wait_up(
    parts: &mut Parts,
    mut up: oneshot::Receiver<NodeNetwork>,
    stop: &mut watch::Receiver<bool>,
) -> Result<NodeNetwork> {
    loop {
        tokio::select! {
            r = &mut up => {
                return match r {
                    Ok(n) => Ok(n),
                    Err(_) => {
                        crate::run::part_ended(parts.join_next().await)?;
                        Err(Error::Stopped(format!("{PART} stopped before it was up")))
                    }
                };
            }
            done = parts.join_next(), if !parts.is_empty() => crate::run::part_ended(done)?,
            _ = crate::stopped(stop) => return Err(Error::Cancelled),
        }
    }
}

/// With etcd leases the node's `spec.podCIDR` (the IPAM controller's) is not what its pods use: flannel gives
/// pods the etcd lease. An empty `spec.podCIDR` is set to the lease; a different one (set once, immutable)
/// stays, and the node object then names a range its pods do not use: the log says so. (The IPAM controller
/// allocating for nodes whose network leases from etcd is what makes the two differ.)
async fn reconcile_pod_cidr(client: &kube::Client, name: &str, lease: &PodCidr) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.get(name).await {
        Ok(n) => n,
        Err(e) => return tracing::warn!(error = %e, "reading node {name} to compare its podCIDR with the lease"),
    };
    let lease_text = lease.to_string();
    match node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
        Some(c) if c == lease_text => {}
        Some(c) => tracing::warn!(
            node = name,
            podCIDR = c,
            lease = %lease_text,
            "the node's spec.podCIDR (from the IPAM controller) differs from its etcd lease; pods get addresses from the lease"
        ),
        None => {
            let patch = serde_json::json!({"spec": {"podCIDR": lease_text, "podCIDRs": [lease_text]}});
            if let Err(e) = nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(error = %e, "setting node {name}'s spec.podCIDR to its etcd lease");
            }
        }
    }
}

/// Sysctls that could not be set: in the log and as a Warning event on the node.
async fn report_warnings(client: &kube::Client, name: &str, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    let recorder = rkube_client::events::Recorder::new(client.clone(), "kubelet", Some(name.to_owned()));
    for w in warnings {
        tracing::warn!("{w}");
        // Node events name the node as its UID, as the kubelet's do.
        let node = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(name.to_owned()),
            uid: Some(name.to_owned()),
            ..ObjectReference::default()
        };
        recorder.record_ref(node, rkube_client::events::EventType::Warning, "NetworkSysctl", w).await;
    }
}
