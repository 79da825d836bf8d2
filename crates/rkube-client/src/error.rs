//! The error controllers and other API clients fail with: what request failed and why.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a component's work against the API failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Issuing an in-process client certificate failed.
    #[error("issuing the client certificate for {user}: {source}")]
    Certificate {
        /// The identity the certificate was for.
        user: String,
        /// The PKI's error.
        #[source]
        source: rkube_pki::PkiError,
    },
    /// The in-process kubeconfig could not be written or read back.
    #[error("building the client configuration: {0}")]
    Kubeconfig(String),
    /// The kube client could not be built from the configuration (TLS identity, URL).
    #[error("building the API client: {0}")]
    Client(#[source] kube::Error),
    /// A request to the API server failed; `what` says which.
    #[error("{what}: {source}")]
    Api {
        /// The request, e.g. `creating pod default/web-1`.
        what: String,
        /// The client's error (with the server's `Status` when it sent one).
        #[source]
        source: kube::Error,
    },
    /// A read-modify-write kept meeting concurrent writers; the item is retried later.
    #[error("{0}: the object kept changing (conflicts)")]
    Conflict(String),
    /// An object is not usable as it is (a selector that does not parse, a template missing a field);
    /// retrying does not help until it changes.
    #[error("{0}")]
    Invalid(String),
    /// A component task ended on its own (a bug or a panic): the process stops.
    #[error("{0} stopped unexpectedly")]
    Stopped(&'static str),
}

impl Error {
    /// Wraps a client error with what the request was for.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Error {
        Error::Api { what: what.into(), source }
    }
}
