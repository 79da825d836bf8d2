//! [`run`]: the agent's parts started in order, watched together, and stopped together.

use std::any::Any;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use crate::cni::PodCidr;
use crate::config::AgentConfig;
use crate::node::Facts;
use crate::runtime::{self, NodeRuntime};
use crate::status::StatusLoop;
use crate::{Error, Result, lock, register, sleep_or_stop};

/// How long the kubelet and the agent API get to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) type Parts = JoinSet<(&'static str, Result<()>)>;

/// Runs the agent until `stop` is set: fires `ready` once the node is registered and Ready and the kubelet and
/// the agent API run. Returns the first part's failure, with context.
pub async fn run(
    config: AgentConfig,
    client: kube::Client,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let Some(tls) = config.tls.clone() else {
        return Err(Error::Invalid("  - no TLS configuration for the agent API (kubelet port)".to_owned()));
    };
    let _lock = lock::take(&config.agent_dir, "an rkube agent")?;
    for dir in [config.pods_dir(), config.pod_logs_dir(), config.cni_conf_dir()] {
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    }
    tracing::info!(node = %config.node_name, socket = %config.runtime_socket().display(), "starting the container runtime");
    let node_runtime = runtime::start(&config).await?;
    let (parts_stop_tx, parts_stop) = watch::channel(false);
    let mut parts = Parts::new();
    let outcome = start_and_watch(&config, client, &node_runtime, tls, stop, parts_stop, &mut parts, ready).await;
    // Stop every part; the kubelet leaves containers running (the next start adopts them).
    let _ = parts_stop_tx.send(true);
    let _ = tokio::time::timeout(STOP_TIMEOUT, async {
        while let Some(done) = parts.join_next().await {
            if let Ok((name, Err(e))) = done {
                tracing::warn!("{name} stopped with: {e}");
            }
        }
    })
    .await;
    parts.abort_all();
    if let Some(supervisor) = node_runtime.supervisor {
        tracing::info!("stopping containerd (pods keep running in their shims)");
        // Every part is gone, so this is the last reference; were it not, dropping it stops containerd too.
        if let Ok(supervisor) = Arc::try_unwrap(supervisor) {
            supervisor.stop().await;
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn start_and_watch(
    config: &AgentConfig,
    client: kube::Client,
    node_runtime: &NodeRuntime,
    tls: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
    parts_stop: watch::Receiver<bool>,
    parts: &mut Parts,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let rt = &node_runtime.runtime;
    let facts = Facts {
        name: config.node_name.clone(),
        ip: config.node_ip,
        kubelet_port: config.kubelet_port,
        extra_labels: config.node_labels.clone(),
        kube_reserved: config.kube_reserved,
        system_reserved: config.system_reserved,
    };
    // Registering does not need the pause image (only pods do): both at once, so node IPAM gives the node its
    // podCIDR while containerd unpacks the image.
    tracing::info!(image = rkube_cri::pause::IMAGE, "importing the pause image");
    let (_, node) = tokio::try_join!(import_pause(rt), register::register(&client, &facts, &mut stop))?;
    let uid = node.metadata.uid.clone();
    parts.spawn({
        let (client, name, stop) = (client.clone(), config.node_name.clone(), parts_stop.clone());
        async move {
            crate::lease::run(client, name, uid, stop).await;
            ("the node lease", Ok(()))
        }
    });
    let (node_ready_tx, mut node_ready) = watch::channel(false);
    let recheck = Arc::new(Notify::new());
    let status = StatusLoop {
        client: client.clone(),
        runtime: rt.clone(),
        facts,
        agent_dir: config.agent_dir.clone(),
        max_pods: config.max_pods,
        supervisor: node_runtime.supervisor.clone(),
        recheck: recheck.clone(),
    };
    let status_stop = parts_stop.clone();
    parts.spawn(async move {
        status.run(status_stop, node_ready_tx).await;
        ("the node status", Ok(()))
    });

    let network = crate::network::start(config, &client, parts, parts_stop.clone(), &mut stop).await?;
    tracing::info!(podCIDR = %network.pod_cidr, "the pod network is up");
    // The CNI config is what the runtime's NetworkReady (and so the node's Ready) waited for.
    recheck.notify_one();

    let volumes =
        Arc::new(rkube_volumes::VolumeManager::new(client.clone(), config.pods_dir(), config.node_name.clone()));
    let kubelet_config = rkube_kubelet::KubeletConfig {
        node_name: config.node_name.clone(),
        node_ip: config.node_ip,
        root_dir: config.agent_dir.clone(),
        pod_logs_dir: config.pod_logs_dir(),
        cluster_dns: config.cluster_dns.clone(),
        cluster_domain: config.cluster_domain.clone(),
        resolv_conf: config.resolv_conf.clone(),
        pause_image: rkube_cri::pause::IMAGE.to_owned(),
        systemd_cgroup: node_runtime.systemd_cgroup,
    };
    let (kubelet_ready_tx, kubelet_ready) = oneshot::channel();
    parts.spawn({
        let (client, rt, stop) = (client.clone(), rt.clone(), parts_stop.clone());
        async move {
            let r = rkube_kubelet::run(kubelet_config, client, rt, volumes, stop, Some(kubelet_ready_tx)).await;
            ("the kubelet", r.map_err(|e| Error::Kubelet(Box::new(e))))
        }
    });
    wait_part(parts, kubelet_ready, &mut stop, "the kubelet").await?;

    let server_config = rkube_kubelet_server::ServerConfig {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.kubelet_port)),
        tls,
        pod_logs_dir: config.pod_logs_dir(),
        node_name: config.node_name.clone(),
    };
    let (server_ready_tx, server_ready) = oneshot::channel();
    parts.spawn({
        let (rt, stop) = (rt.clone(), parts_stop.clone());
        async move {
            let r = rkube_kubelet_server::serve(server_config, rt, stop, Some(server_ready_tx)).await;
            ("the agent API", r.map_err(|e| Error::AgentApi(Box::new(e))))
        }
    });
    wait_part(parts, server_ready, &mut stop, "the agent API").await?;
    crate::services::start(config, &client, &network, parts, parts_stop.clone(), &mut stop).await?;

    tracing::info!(node = %config.node_name, "waiting for the node to be Ready");
    loop {
        tokio::select! {
            r = async { node_ready.wait_for(|r| *r).await.map(|_| ()) } => {
                r.map_err(|_| Error::Stopped("the node status loop ended".into()))?;
                break;
            }
            done = parts.join_next(), if !parts.is_empty() => part_ended(done)?,
            _ = crate::stopped(&mut stop) => return Err(Error::Cancelled),
        }
    }
    tracing::info!(node = %config.node_name, "node is Ready");
    if let Some(r) = ready {
        let _ = r.send(());
    }
    loop {
        tokio::select! {
            done = parts.join_next(), if !parts.is_empty() => part_ended(done)?,
            _ = crate::stopped(&mut stop) => return Ok(()),
        }
    }
}

/// Imports rkube's pause image into the runtime (every pod's sandbox runs it; no registry is needed).
async fn import_pause(rt: &rkube_cri::Runtime) -> Result<()> {
    let archive = rkube_cri::pause::archive();
    rkube_cri::images::import_bytes(rt.endpoint(), rkube_cri::pause::IMAGE, &archive)
        .await
        .map(|_| ())
        .map_err(Error::runtime(format!("importing the pause image {}", rkube_cri::pause::IMAGE)))
}

/// Waits until the IPAM controller gives the node its `spec.podCIDR` (usually within milliseconds of the node's
/// registration: the first retries are quick).
pub(crate) async fn wait_pod_cidr(
    client: &kube::Client,
    name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<PodCidr> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut delay = Duration::from_millis(25);
    let mut said = false;
    loop {
        match nodes.get(name).await {
            Ok(n) => {
                if let Some(cidr) = n.spec.and_then(|s| s.pod_cidr) {
                    return PodCidr::parse(&cidr);
                }
                if !said {
                    tracing::info!(node = %name, "waiting for the node's podCIDR (from the node IPAM controller)");
                    said = true;
                }
            }
            Err(e) => tracing::warn!(node = %name, "reading the node for its podCIDR: {e}"),
        }
        if sleep_or_stop(delay, stop).await {
            return Err(Error::Cancelled);
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Waits for a part's readiness, failing if it (or another part) ends first or the agent is stopped.
pub(crate) async fn wait_part(
    parts: &mut Parts,
    mut ready: oneshot::Receiver<()>,
    stop: &mut watch::Receiver<bool>,
    name: &str,
) -> Result<()> {
    loop {
        tokio::select! {
            r = &mut ready => {
                return match r {
                    Ok(()) => Ok(()),
                    // Dropped without firing: the part ended; its result says why.
                    Err(_) => {
                        part_ended(parts.join_next().await)?;
                        Err(Error::Stopped(format!("{name} stopped before it was ready")))
                    }
                };
            }
            done = parts.join_next(), if !parts.is_empty() => part_ended(done)?,
            _ = crate::stopped(stop) => return Err(Error::Cancelled),
        }
    }
}

/// What a part's end means: its error, or an unexpected stop (parts run until the agent stops).
pub(crate) fn part_ended(done: Option<Result<(&'static str, Result<()>), tokio::task::JoinError>>) -> Result<()> {
    match done {
        None => Ok(()),
        Some(Ok((name, Ok(())))) => Err(Error::Stopped(format!("{name} stopped unexpectedly"))),
        Some(Ok((_, Err(e)))) => Err(e),
        Some(Err(e)) if e.is_panic() => {
            Err(Error::Stopped(format!("a part of the agent panicked: {}", panic_message(e.into_panic()))))
        }
        Some(Err(_)) => Err(Error::Stopped("a part of the agent was cancelled".to_owned())),
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map(|s| (*s).to_owned()).unwrap_or_else(|| "(no message)".to_owned()),
    }
}
