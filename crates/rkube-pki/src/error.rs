//! The one error type of the PKI: every variant names the file or value at fault and, where one exists, the remedy.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// Everything that can go wrong while creating, loading or using the cluster's PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file in the TLS directory (or the kubeconfig) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A file or directory could not be written, created or have its permissions set.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A file exists but does not hold what it should (bad PEM, wrong kind of key, not a CA...).
    /// Nothing is overwritten: the operator decides between restoring and regenerating.
    #[error("{} is not a valid {what}: {detail}; {remedy}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the file should hold, e.g. "PEM certificate".
        what: &'static str,
        /// What is wrong with it.
        detail: String,
        /// What the operator can do about it.
        remedy: &'static str,
    },

    /// One half of the CA's certificate/key pair exists and the other does not.
    #[error("{} exists but {} does not; {remedy}", present.display(), missing.display())]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
        /// What the operator can do about it.
        remedy: &'static str,
    },

    /// The CA certificate's public key is not the CA key's.
    #[error(
        "{} does not belong to the key in {}; restore the matching pair from a backup, or remove both to create a new CA (every kubeconfig and agent then needs new credentials)",
        cert.display(),
        key.display()
    )]
    CaKeyMismatch {
        /// The CA certificate.
        cert: PathBuf,
        /// The CA key.
        key: PathBuf,
    },

    /// The CA certificate is outside its validity period, so nothing it signs can be trusted.
    #[error(
        "the cluster CA {} is not valid now (valid from {not_before} to {not_after}); check the system clock, or remove {} and its key to create a new CA (every kubeconfig and agent then needs new credentials)",
        path.display(),
        path.display()
    )]
    CaNotValidNow {
        /// The CA certificate.
        path: PathBuf,
        /// Start of validity, RFC 3339.
        not_before: String,
        /// End of validity, RFC 3339.
        not_after: String,
    },

    /// A subject alternative name (from `--tls-san`, the node name or a caller) is neither an IP nor a DNS name.
    #[error("invalid TLS subject alternative name {value:?}: {reason}")]
    InvalidSan {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A service CIDR could not be parsed or has no first host address.
    #[error("invalid service CIDR {value:?}: {reason}")]
    InvalidServiceCidr {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A client certificate request named an empty user or an unusable group.
    #[error("invalid certificate subject {value:?}: {reason}")]
    InvalidSubject {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Key generation or certificate signing failed inside rcgen/aws-lc-rs.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// The crypto library's reason.
        #[source]
        source: rcgen::Error,
    },

    /// rustls rejected the serving certificate/key or the protocol configuration.
    #[error("cannot build the TLS server configuration: {source}")]
    Tls {
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },

    /// rustls could not build the client-certificate verifier from the CA.
    #[error("cannot build the client certificate verifier from the cluster CA: {source}")]
    ClientVerifier {
        /// rustls's reason.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A kubeconfig could not be rendered or parsed.
    #[error("cannot {action} kubeconfig: {source}")]
    Kubeconfig {
        /// "render" or "parse".
        action: &'static str,
        /// serde_yaml's reason.
        #[source]
        source: serde_yaml::Error,
    },
}
