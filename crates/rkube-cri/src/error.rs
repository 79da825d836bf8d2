//! Errors of the runtime side of the node.

/// What went wrong talking to or running the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CRI call failed.
    #[error("{what}: {source}")]
    Cri {
        /// The call and its subject.
        what: String,
        /// The runtime's answer.
        #[source]
        source: tonic::Status,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
