//! Subnet managers: where a node's lease and its peers' leases live (etcd as flanneld keeps them, or the Node
//! API as flannel's kube subnet manager and k3s keep them).

mod etcd;
mod kube;

pub use etcd::{DEFAULT_PREFIX, EtcdSubnetManager};
pub use kube::{ANNOTATION_PREFIX, KubeSubnetManager};

use tokio::sync::mpsc;

use crate::config::NetConfig;
use crate::lease::{Lease, LeaseAttrs, LeaseEvent};

/// A subnet manager failed; the message says where and why.
#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    /// etcd refused or failed.
    #[error("etcd: {context}: {source}")]
    Etcd {
        /// What was being done.
        context: String,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// The API server refused or failed.
    #[error("kube API: {context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        source: ::kube::Error,
    },
    /// The stored network config is bad.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Not possible yet, worth retrying (the node has no podCIDR yet).
    #[error("{0}")]
    NotYet(String),
    /// Anything else, worded for the operator (no config stored, network exhausted).
    #[error("{0}")]
    Other(String),
}

impl SubnetError {
    /// Whether retrying later may help (the store is unreachable, the podCIDR is not assigned yet).
    pub fn is_transient(&self) -> bool {
        matches!(self, SubnetError::Etcd { .. } | SubnetError::Kube { .. } | SubnetError::NotYet(_))
    }
}

/// Where leases are kept. Implementations are cheap to share across tasks.
#[async_trait::async_trait]
pub trait SubnetManager: Send + Sync {
    /// The cluster's network config (etcd: `<prefix>/config`; kube: the one it was built with).
    async fn network_config(&self) -> Result<NetConfig, SubnetError>;
    /// Leases a subnet for this node, taking back the one it held before (same PublicIP) when there is one.
    async fn acquire(&self, config: &NetConfig, attrs: &LeaseAttrs) -> Result<Lease, SubnetError>;
    /// Extends the lease; returns it with its new expiration.
    async fn renew(&self, lease: &Lease) -> Result<Lease, SubnetError>;
    /// Sends a `Snapshot` of every current peer lease (the node's own `own` lease excluded), then each change,
    /// until the channel closes (Ok) or the source fails (Err: the caller retries with backoff).
    async fn watch(&self, own: &Lease, events: mpsc::Sender<LeaseEvent>) -> Result<(), SubnetError>;
}
