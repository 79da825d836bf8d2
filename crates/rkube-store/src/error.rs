//! The errors every backend reports, so the API server can map them to upstream's `Status` codes.

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not exist (API: 404 NotFound).
    #[error("key {key:?} not found")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },
    /// A create found the key already there (API: 409 AlreadyExists).
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key that exists.
        key: String,
    },
    /// A compare-and-swap found another revision than expected (API: 409 Conflict).
    #[error("key {key:?} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key that was written.
        key: String,
        /// The revision the writer based its change on.
        expected: i64,
        /// The key's current modification revision.
        actual: i64,
    },
    /// The revision asked for was compacted away (API: 410 Gone, reason Expired).
    #[error(
        "revision {requested} has been compacted (oldest available: {compacted}); list again to get a current revision"
    )]
    Expired {
        /// The revision asked for.
        requested: i64,
        /// The compacted revision: the oldest one still readable.
        compacted: i64,
    },
    /// A revision later than the store's current one was asked for (API: 504/Timeout upstream; callers may retry).
    #[error("revision {requested} is newer than the store's current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: i64,
        /// The store's current revision.
        current: i64,
    },
    /// A value is larger than the store accepts (API: 413 / RequestEntityTooLarge).
    #[error(
        "value for key {key:?} is {size} bytes, over the limit of {limit} bytes; store less in one object (split it or use a volume)"
    )]
    ValueTooLarge {
        /// The key that was written.
        key: String,
        /// The value's size in bytes.
        size: usize,
        /// The largest size accepted.
        limit: usize,
    },
    /// The store cannot be reached or opened: names where, what went wrong and what to do.
    #[error("store {location} is unavailable: {message}")]
    Unavailable {
        /// The file or endpoint.
        location: String,
        /// What went wrong and the remedy.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The stored data is damaged or not an rkube store.
    #[error("store {location} is corrupt: {message}")]
    Corrupt {
        /// The file or endpoint.
        location: String,
        /// What was found and the remedy.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Any other backend failure, with context.
    #[error("store {location}: {message}")]
    Backend {
        /// The file or endpoint.
        location: String,
        /// What was being done.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// True for errors that say the store could not be reached, as opposed to an answer about the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
