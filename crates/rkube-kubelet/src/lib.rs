//! The kubelet's pod lifecycle over CRI: it watches the pods bound to its node and, for each, runs the sandbox
//! (network from CNI, DNS config), init containers in order, then the containers (command, env with
//! valueFrom/envFrom, mounts, resources as cgroup limits, securityContext), restarts them per restartPolicy
//! with CrashLoopBackOff, acts on probe verdicts, runs hooks, terminates pods gracefully, and writes pod
//! status as upstream fills it. A restarted kubelet adopts the containers it finds (by their labels).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod actions;
mod backoff;
mod cleanup;
mod containers;
mod images;
mod kill;
mod pleg;
mod runtime_state;
mod source;
mod spec;
mod state;
mod status;
mod status_write;
mod sync;
mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

pub(crate) use state::Kubelet;

/// Errors of the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server could not be reached for a call the kubelet cannot do without.
    #[error(transparent)]
    Client(#[from] rkube_client::Error),
    /// The runtime failed a call the kubelet cannot do without.
    #[error(transparent)]
    Runtime(#[from] rkube_cri::Error),
    /// The pod watch could not be started or ended.
    #[error("watching the pods bound to this node: {0}")]
    Watch(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the kubelet needs to know about its node.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// This node's name (pods with `spec.nodeName` equal to it are ours).
    pub node_name: String,
    /// The node's IP (`status.hostIP`, and the pod IP of hostNetwork pods).
    pub node_ip: IpAddr,
    /// Per-pod directories (`<root>/pods/<uid>`: volumes, etc-hosts, termination logs).
    pub root_dir: PathBuf,
    /// Container log files (`<dir>/<namespace>_<pod>_<uid>/<container>/<restart>.log`, as upstream).
    pub pod_logs_dir: PathBuf,
    /// Cluster DNS servers written into pods' resolv.conf (`--cluster-dns`).
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// The host's resolv.conf (for `dnsPolicy: Default` and the search path).
    pub resolv_conf: PathBuf,
    /// The sandbox image (rkube's pause image).
    pub pause_image: String,
    /// Whether cgroups are named for systemd (`kubepods-burstable-pod<uid>.slice`) or cgroupfs paths.
    pub systemd_cgroup: bool,
}

/// Runs the kubelet until `stop` is set: fires `ready` once the pods already bound to the node are known
/// (and running containers adopted). Volumes and probes are the given managers'.
pub async fn run(
    config: KubeletConfig,
    client: kube::Client,
    runtime: rkube_cri::Runtime,
    volumes: Arc<rkube_volumes::VolumeManager>,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let recorder = rkube_client::events::Recorder::new(client.clone(), "kubelet", Some(config.node_name.clone()));
    let (probes, updates) = rkube_probes::ProbeManager::new(recorder.clone());
    let kubelet = Arc::new(Kubelet::new(config, client, runtime, volumes, probes, recorder, stop.clone()));
    tokio::spawn(worker::probe_updates(kubelet.clone(), updates, stop.clone()));
    source::run(kubelet, stop, ready).await
}
