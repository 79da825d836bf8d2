//! The crate's error type: what can stop the controllers, and what one reconcile can fail with.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a controller (or the controller manager) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shared client machinery failed (configuration, leader election, a controller of another crate).
    #[error(transparent)]
    Client(#[from] rkube_client::Error),
    /// The kube client could not be built from the configuration (TLS identity, URL).
    #[error("building the API client: {0}")]
    Connect(#[source] kube::Error),
    /// A request to the API server failed; `what` says which.
    #[error("{what}: {source}")]
    Api {
        /// The request, e.g. `deleting configmaps in namespace x`.
        what: String,
        /// The client's error (with the server's `Status` when it sent one).
        #[source]
        source: kube::Error,
    },
    /// API discovery failed.
    #[error("API discovery: {0}")]
    Discovery(#[source] kube::Error),
    /// An owner reference names a kind that discovery does not know (yet): retried later.
    #[error("no resource serves kind {kind} in {api_version}")]
    UnknownKind {
        /// The reference's `apiVersion`.
        api_version: String,
        /// The reference's `kind`.
        kind: String,
    },
    /// A namespace still holds objects: its deletion is retried later.
    #[error("namespace {namespace} still has content; retry in {retry_after:?}")]
    ContentRemaining {
        /// The namespace.
        namespace: String,
        /// When to look again (upstream's estimate: grace periods, 15 s for pending finalizers).
        retry_after: std::time::Duration,
    },
    /// A read-modify-write kept meeting concurrent writers; the item is retried later.
    #[error("{0}: the object kept changing (conflicts)")]
    Conflict(String),
    /// A controller task ended on its own (a bug or a panic): the manager stops.
    #[error("controller {0} stopped unexpectedly")]
    Stopped(&'static str),
}

impl Error {
    /// Wraps a client error with what the request was for.
    pub(crate) fn api(what: impl Into<String>, source: kube::Error) -> Error {
        Error::Api { what: what.into(), source }
    }
}
