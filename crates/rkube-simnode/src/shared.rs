//! What the node and pod tasks of one process share: the client, the configuration, which nodes are ours,
//! the request limit, and what the node watch last saw of our nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use tokio::sync::{Semaphore, SemaphorePermit, watch};

use crate::config::SimConfig;
use crate::ipam::{Cidr, fake_pod_cidr, node_ip};

/// What the node watch last saw of one of our nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeView {
    /// `metadata.uid` (owner of the node's Lease).
    pub(crate) uid: Option<String>,
    /// `spec.podCIDRs` (or `spec.podCIDR`), parsed.
    pub(crate) pod_cidrs: Vec<Cidr>,
    /// `status.conditions`.
    pub(crate) conditions: Vec<NodeCondition>,
}

impl NodeView {
    pub(crate) fn of(node: &Node) -> NodeView {
        let spec = node.spec.clone().unwrap_or_default();
        let cidrs = spec.pod_cidrs.filter(|c| !c.is_empty()).or_else(|| spec.pod_cidr.map(|c| vec![c]));
        NodeView {
            uid: node.metadata.uid.clone(),
            pod_cidrs: cidrs.iter().flatten().filter_map(|c| Cidr::parse(c)).collect(),
            conditions: node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default(),
        }
    }
}

/// State shared by every task of one simulated-node process.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) config: SimConfig,
    /// Written into `nodeInfo.kubeletVersion`: the server's own version.
    pub(crate) kubelet_version: String,
    /// Our node names and their indices.
    pub(crate) owned: HashMap<String, usize>,
    limit: Semaphore,
    nodes: Mutex<HashMap<String, NodeView>>,
    /// Set once the node watch has listed our nodes.
    pub(crate) nodes_synced: watch::Sender<bool>,
    /// Set once the pod watch has listed the pods bound to nodes (and counted those already running).
    pub(crate) pods_synced: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(client: kube::Client, config: SimConfig, kubelet_version: String) -> Arc<Shared> {
        let owned = config.indices().map(|i| (config.node_name(i), i)).collect();
        let limit = Semaphore::new(config.max_in_flight);
        Arc::new(Shared {
            client,
            config,
            kubelet_version,
            owned,
            limit,
            nodes: Mutex::new(HashMap::new()),
            nodes_synced: watch::Sender::new(false),
            pods_synced: watch::Sender::new(false),
        })
    }

    /// Waits for a request slot; hold the permit for the duration of one request.
    pub(crate) async fn permit(&self) -> Option<SemaphorePermit<'_>> {
        self.limit.acquire().await.ok()
    }

    pub(crate) fn nodes(&self) -> MutexGuard<'_, HashMap<String, NodeView>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's view, if the watch has seen it (`None` also when it was deleted).
    pub(crate) fn node(&self, name: &str) -> Option<NodeView> {
        self.nodes().get(name).cloned()
    }

    /// The pod ranges of our node `name`: its podCIDRs, else a stand-in range.
    pub(crate) fn pod_cidrs(&self, name: &str, index: usize) -> Vec<Cidr> {
        match self.node(name) {
            Some(v) if !v.pod_cidrs.is_empty() => v.pod_cidrs,
            _ => Cidr::parse(&fake_pod_cidr(index)).into_iter().collect(),
        }
    }

    /// The InternalIP of our node with index `index`.
    pub(crate) fn host_ip(&self, index: usize) -> String {
        node_ip(index).to_string()
    }
}
