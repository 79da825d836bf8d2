//! What can go wrong in a backup, restore or migration, each with what to do about it.

use std::path::PathBuf;

/// A failed backup, restore or migration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command would overwrite or lose something, or cannot run now; the message says what to do instead.
    #[error("{0}")]
    Refused(String),
    /// The archive is not a usable rkube backup.
    #[error("{path}: {message}")]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing", "reading", ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error("{what}: {source}")]
    Store {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: rkube_store::Error,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an IO error with what was done to which path.
pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}

/// Wraps a store error with what was being done.
pub(crate) fn store(what: impl Into<String>) -> impl FnOnce(rkube_store::Error) -> Error {
    let what = what.into();
    move |source| Error::Store { what, source }
}
