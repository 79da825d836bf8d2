//! Why one sync of a service failed; every failure is retried with per-key backoff.

/// A failed sync.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// A request to the API server failed.
    #[error(transparent)]
    Api(#[from] rkube_client::Error),
    /// The informer cache has not yet seen this controller's own last write; acting now would undo it.
    #[error("{0} informer cache is out of date for {1}/{2}")]
    Stale(&'static str, String, String),
    /// Some pods were left out because their node is not known yet.
    #[error("skipping Pod {pod} for Service {namespace}/{service}: Node {node} Not Found")]
    NodeMissing {
        /// The pod left out.
        pod: String,
        /// The service's namespace.
        namespace: String,
        /// The service.
        service: String,
        /// The node the pod names.
        node: String,
    },
}

/// A sync's result.
pub(crate) type SyncResult = Result<(), SyncError>;
