//! Why a custom resource could not be added to the documents.

/// Errors of [`crate::Documents`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The CustomResourceDefinition lacks a field the documents need, or has it in the wrong form.
    #[error("invalid CustomResourceDefinition: {0}")]
    InvalidCrd(String),
    /// The schema is not a JSON object.
    #[error("the schema of {kind} ({group}/{version}) is not an object")]
    InvalidSchema {
        /// API group.
        group: String,
        /// Version.
        version: String,
        /// Kind.
        kind: String,
    },
    /// A built-in resource already has this group, version and plural name.
    #[error("{plural}.{group}/{version} is a built-in resource")]
    BuiltinConflict {
        /// API group.
        group: String,
        /// Version.
        version: String,
        /// Plural resource name.
        plural: String,
    },
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
