//! The node's pod network (issue 6): flannel-compatible subnet leases (etcd or the node's `spec.podCIDR`),
//! vxlan/host-gw via rkube-net, the CNI conflist, subnet.env and docker options; or, with
//! `--flannel-backend none`, the node-local bridge of [`crate::cni`] (single node, or tests sharing the host's
//! network namespace).
//!
//! [`NetworkConfig::from_flags`] refuses bad flags before anything changes; the flannel path ([`flannel`])
//! refuses what only shows at start (a malformed or too small config in etcd, an exhausted network, a missing
//! uplink, an MTU too small for vxlan) before it writes routes, rules or files (a vxlan device made for a lease
//! that was refused is removed again), so a refused node never disturbs the network of nodes already running.

mod flannel;
mod validate;

use std::path::PathBuf;

use tokio::sync::watch;

use crate::Result;
use crate::cni::PodCidr;
use crate::config::AgentConfig;
use crate::run::Parts;

/// The pod-network flags as given (defaults filled in by the CLI).
#[derive(Clone, Debug)]
pub struct NetworkFlags {
    /// `--flannel-backend vxlan|host-gw|none`.
    pub backend: String,
    /// `--flannel-iface`: the uplink by name.
    pub iface: Option<String>,
    /// `--flannel-iface-regex`: the uplink by pattern.
    pub iface_regex: Option<String>,
    /// `--cluster-cidr`: the pod network (flannel's `Network`), default 172.30.0.0/16.
    pub cluster_cidr: String,
    /// `--node-cidr-mask-size`: flannel's `SubnetLen` (default 24).
    pub subnet_len: u8,
    /// `--flannel-etcd-endpoints`: lease subnets in etcd (flannel's layout); empty: the node's `spec.podCIDR`.
    pub etcd_endpoints: Vec<String>,
    /// `--flannel-etcd-prefix` (default `/coreos.com/network`; the guides use `/kube-centos/network`).
    pub etcd_prefix: String,
    /// `--flannel-subnet-env` (default `/run/flannel/subnet.env`).
    pub subnet_env: PathBuf,
    /// `--flannel-docker-opts` (default `/run/flannel/docker`).
    pub docker_opts: PathBuf,
}

impl Default for NetworkFlags {
    /// The CLI's defaults.
    fn default() -> Self {
        NetworkFlags {
            backend: "vxlan".into(),
            iface: None,
            iface_regex: None,
            cluster_cidr: "172.30.0.0/16".into(),
            subnet_len: 24,
            etcd_endpoints: Vec::new(),
            etcd_prefix: "/coreos.com/network".into(),
            subnet_env: "/run/flannel/subnet.env".into(),
            docker_opts: "/run/flannel/docker".into(),
        }
    }
}

/// The validated pod-network configuration.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The flags, checked.
    pub flags: NetworkFlags,
    /// flannel's network config the flags describe (vxlan and host-gw; `None` with `--flannel-backend none`).
    /// With etcd it is written to `<prefix>/config` only when that key is absent: what etcd holds wins.
    pub flannel: Option<rkube_net::config::NetConfig>,
}

impl NetworkConfig {
    /// Validates `flags`, pushing every problem (one line each, naming the flag and the fix) onto `problems`.
    pub fn from_flags(flags: &NetworkFlags, problems: &mut Vec<String>) -> NetworkConfig {
        let flannel = validate::check(flags, problems);
        NetworkConfig { flags: flags.clone(), flannel }
    }
}

/// What the rest of the agent needs from the pod network once it is up.
#[derive(Clone, Debug)]
pub struct PodNetwork {
    /// This node's pod range.
    pub pod_cidr: PodCidr,
    /// The whole cluster's pod network (`--cluster-cidr` for the proxy's masquerading).
    pub cluster_cidr: String,
}

/// Brings the node's pod network up (adding its long-running part to `parts`, stopping on `parts_stop`) and
/// returns once pods can get addresses (the conflist is written).
pub(crate) async fn start(
    config: &AgentConfig,
    client: &kube::Client,
    parts: &mut Parts,
    parts_stop: watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> Result<PodNetwork> {
    if let Some(net) = &config.network.flannel {
        return flannel::start(config, net, client, parts, parts_stop, stop).await;
    }
    // `--flannel-backend none`: the node-local bridge over the node's spec.podCIDR.
    let _ = (parts, parts_stop);
    let pod_cidr = crate::run::wait_pod_cidr(client, &config.node_name, stop).await?;
    let conflist = crate::cni::write(&config.cni_conf_dir(), &config.cni_bridge, &pod_cidr, &config.cni_ipam_dir())?;
    tracing::info!(podCIDR = %pod_cidr, bridge = %config.cni_bridge, path = %conflist.display(), "wrote the node-local CNI configuration");
    Ok(PodNetwork { pod_cidr, cluster_cidr: config.network.flags.cluster_cidr.clone() })
}

/// Whether this network namespace already has the vxlan device (`flannel.1`, left running by an earlier run
/// of this node: its kernel socket holds UDP 8472, which a preflight port check must not count as taken).
pub async fn vxlan_device_present() -> bool {
    match rkube_net::nl::connect() {
        Ok(h) => rkube_net::backend::vxlan_device_present(&h).await.unwrap_or(false),
        Err(_) => false,
    }
}
