//! Turns SQLite failures into the store's [`Error`] variants, each naming the file, the operation and a remedy.

use rkube_store::Error;
use rusqlite::ErrorCode;

/// Maps a SQLite error met while doing `op` on the database at `location`.
pub(crate) fn map(location: &str, op: &str, err: rusqlite::Error) -> Error {
    let code = err.sqlite_error_code();
    let (kind, remedy) = match code {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            (Kind::Corrupt, "the file is damaged; restore it from a backup, or move it aside to start an empty store")
        }
        Some(ErrorCode::DiskFull) => (Kind::Unavailable, "the disk is full; free space on its filesystem"),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => (
            Kind::Unavailable,
            "check that the file and its directory exist, are writable by this process and are on a read-write filesystem",
        ),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => (
            Kind::Unavailable,
            "another process holds the database lock; stop the other rkube server using this data directory",
        ),
        Some(ErrorCode::SystemIoFailure) | Some(ErrorCode::FileLockingProtocolFailed) => (
            Kind::Unavailable,
            "the filesystem reported an I/O error; check the disk (dmesg) and that the filesystem supports locking (not NFS)",
        ),
        _ => (Kind::Backend, ""),
    };
    let message = if remedy.is_empty() { format!("{op}: {err}") } else { format!("{op}: {err}; {remedy}") };
    let location = location.to_owned();
    let source = Some(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
    match kind {
        Kind::Corrupt => Error::Corrupt { location, message, source },
        Kind::Unavailable => Error::Unavailable { location, message, source },
        Kind::Backend => Error::Backend { location, message, source },
    }
}

/// The error a caller gets when the writer thread or a reader task has gone away.
pub(crate) fn closed(location: &str, op: &str) -> Error {
    Error::Unavailable {
        location: location.to_owned(),
        message: format!("{op}: the store was closed or its writer thread stopped; restart rkube"),
        source: None,
    }
}

/// A [`Error::Backend`] without an underlying SQLite error.
pub(crate) fn backend(location: &str, message: String) -> Error {
    Error::Backend { location: location.to_owned(), message, source: None }
}

/// A copy of `err` for another caller: the SQLite source cannot be cloned, its text is kept.
pub(crate) fn duplicate(err: &Error) -> Error {
    match err {
        Error::Unavailable { location, message, .. } => {
            Error::Unavailable { location: location.clone(), message: message.clone(), source: None }
        }
        Error::Corrupt { location, message, .. } => {
            Error::Corrupt { location: location.clone(), message: message.clone(), source: None }
        }
        Error::Backend { location, message, .. } => {
            Error::Backend { location: location.clone(), message: message.clone(), source: None }
        }
        other => Error::Backend { location: String::new(), message: other.to_string(), source: None },
    }
}

enum Kind {
    Corrupt,
    Unavailable,
    Backend,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds_with_remedies() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        let err = map("/x/state.db", "commit", busy);
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains("/x/state.db") && err.to_string().contains("commit"), "{err}");

        let corrupt = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), None);
        assert!(matches!(map("/x", "read", corrupt), Error::Corrupt { .. }));

        let other = rusqlite::Error::InvalidQuery;
        assert!(matches!(map("/x", "read", other), Error::Backend { .. }));
    }
}
