//! The storage seam of rkube: one [`Store`] trait that the API server (and only the API server) uses,
//! with an in-memory backend here and the SQLite and etcd backends in their own crates.
//!
//! Semantics follow etcd v3, because upstream Kubernetes is written against it:
//! every write gets a new cluster-wide revision (the object's `resourceVersion`),
//! updates and deletes are compare-and-swap on the key's last modification revision,
//! watches deliver every change after a revision in revision order, and compaction
//! forgets history so that reads and watches at older revisions fail with [`Error::Expired`].

pub mod compactor;
mod error;
pub mod keys;
pub mod memory;
mod types;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Error, Result};
pub use keys::KeyLayout;
pub use types::{Event, EventKind, KeyValue, ListOptions, ListResult, Revision, WatchStream};

use async_trait::async_trait;

/// The largest value a backend accepts, in bytes: etcd's default request limit (`--max-request-bytes`),
/// so that anything stored in the embedded store could also be stored in a default etcd.
pub const MAX_VALUE_SIZE: usize = 1_572_864;

/// A key-value store with revisions, compare-and-swap and watch: what the API server needs from etcd.
///
/// Keys are UTF-8 strings like `/registry/pods/default/nginx`; values are opaque bytes (the object's JSON).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key at the current revision; `None` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Lists the keys under `prefix` (sorted by key) at the current revision or at `opts.revision`.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces `key` if its last modification revision is `expected`; otherwise
    /// [`Error::Conflict`] (or [`Error::NotFound`] if it is gone). Returns the stored key-value.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key`, if `expected` is given only when its last modification revision matches.
    /// Returns the deleted key-value (as it was) and the revision of the deletion.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// The revision of the last write to the store.
    async fn current_revision(&self) -> Result<Revision>;

    /// The revision up to which history was compacted (0 if never).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Watches every key under `prefix`, delivering each change with a revision greater than `after`,
    /// in revision order, with nothing missed or repeated. Fails with [`Error::Expired`] when `after`
    /// is older than the compacted revision.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Forgets the history before `revision`: reads at older revisions and watches from older
    /// revisions fail with [`Error::Expired`] afterwards. The state at `revision` stays readable.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// A short name of the backend and where it keeps its data, for logs and errors.
    fn describe(&self) -> String;
}

/// The exclusive upper bound of a prefix range: every key starting with `prefix` is below it.
pub fn prefix_end(prefix: &str) -> String {
    // Keys are ASCII paths; U+10FFFF sorts after any character a key contains.
    let mut end = prefix.to_owned();
    end.push(char::MAX);
    end
}

/// Checks a value against [`MAX_VALUE_SIZE`].
pub fn check_value_size(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::ValueTooLarge { key: key.to_owned(), size: value.len(), limit: MAX_VALUE_SIZE });
    }
    Ok(())
}
