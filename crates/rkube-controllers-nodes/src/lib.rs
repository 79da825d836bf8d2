//! Node IPAM and node lifecycle controllers, behaving as upstream kube-controller-manager's:
//!
//! - `ipam`: the range allocator gives each node `spec.podCIDR(s)` from `--cluster-cidr` (IPv4 only);
//! - `lifecycle`: node health from Leases and Ready heartbeats, `Unknown` conditions, the
//!   not-ready/unreachable/unschedulable taints, pods of lost nodes marked not Ready, eviction rate
//!   limits per zone;
//! - `eviction`: the NoExecute taint manager deleting pods that do not (or no longer) tolerate their
//!   node's taints;
//! - `podgc`: the pod garbage collector (pods of deleted nodes, unscheduled terminating pods, finished pods
//!   beyond the threshold).
//!
//! All four read nodes and pods from the one set of shared informers they are given.
//!
//! **Architecture Invariant:** like every controller, these talk to the API server only.

// Tests may unwrap (their data is their own).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod eviction;
mod ipam;
mod lifecycle;
mod podgc;

use std::time::Duration;

use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;

/// What the node controllers need to know about the cluster.
#[derive(Clone, Debug)]
pub struct NodesConfig {
    /// The pod network (`--cluster-cidr`) that node IPAM cuts into per-node ranges; `None` disables IPAM.
    pub cluster_cidr: Option<String>,
    /// The prefix length of each node's range (`--node-cidr-mask-size`, 24 by default).
    pub node_cidr_mask_size: u8,
    /// How long a node may go without renewing its Lease before it is marked unhealthy
    /// (`--node-monitor-grace-period`, 40 s by default).
    pub node_monitor_grace_period: Duration,
}

impl Default for NodesConfig {
    fn default() -> Self {
        NodesConfig {
            cluster_cidr: Some("172.30.0.0/16".to_owned()),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
        }
    }
}

/// Runs the controllers until `stop` is set, with informers of their own; the first to fail stops the others.
pub async fn run(client: Client, config: NodesConfig, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), config, stop).await
}

/// Runs the controllers on the process's shared informers until `stop` is set; the first to fail stops
/// the others.
pub async fn run_shared(
    informers: SharedInformers,
    config: NodesConfig,
    stop: watch::Receiver<bool>,
) -> rkube_client::Result<()> {
    let ipam = {
        let (informers, stop) = (informers.clone(), stop.clone());
        async move {
            match config.cluster_cidr.as_deref() {
                Some(cidr) => ipam::run(informers, cidr, config.node_cidr_mask_size, stop).await,
                None => {
                    let mut stop = stop;
                    rkube_client::stopped(&mut stop).await;
                    Ok(())
                }
            }
        }
    };
    let lifecycle =
        lifecycle::run(informers.clone(), lifecycle::Config::new(config.node_monitor_grace_period), stop.clone());
    let eviction = eviction::run(informers.clone(), stop.clone());
    let podgc = podgc::run(informers, stop);
    // Boxed: the controllers' futures are large, and polling them inline overflows a worker's stack in
    // debug builds.
    tokio::try_join!(Box::pin(ipam), Box::pin(lifecycle), Box::pin(eviction), Box::pin(podgc)).map(|_| ())
}
