//! Node IPAM and node lifecycle controllers.
//!
//! **Not built yet**: [`run`] only waits for its stop signal (the crate is being written).

use std::time::Duration;

use kube::Client;
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

/// Runs the controllers until `stop` is set.
pub async fn run(client: Client, config: NodesConfig, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let _ = (client, config);
    let mut stop = stop;
    rkube_client::stopped(&mut stop).await;
    Ok(())
}
