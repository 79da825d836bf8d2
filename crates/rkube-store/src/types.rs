//! The values that cross the [`crate::Store`] seam: key-values, list pages and watch events.

use std::pin::Pin;

use futures::Stream;

/// A store revision: etcd's `mod_revision`, the API's `resourceVersion`. Starts at 1 for an empty store.
pub type Revision = i64;

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/configmaps/default/x`.
    pub key: String,
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The revision at which the key was created.
    pub create_revision: Revision,
    /// The revision of the key's last change.
    pub mod_revision: Revision,
}

/// What a list reads.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read at this revision instead of the current one (must not be compacted).
    pub revision: Option<Revision>,
    /// At most this many keys; `None` or 0 for all.
    pub limit: Option<usize>,
    /// Start at this key (inclusive) instead of the prefix: how a `continue` token resumes.
    pub start: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// The keys, sorted.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at; pass it back in [`ListOptions::revision`] for the next page.
    pub revision: Revision,
    /// True if keys after the last one returned remain under the prefix.
    pub more: bool,
}

/// What kind of change an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created.
    Added,
    /// The key was changed.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The key after the change; for a deletion the last value, with `mod_revision` the deletion's revision.
    pub kv: KeyValue,
    /// The key before the change (absent for [`EventKind::Added`]).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which the change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events; an `Err` item ends the watch (e.g. [`crate::Error::Expired`]).
pub type WatchStream = Pin<Box<dyn Stream<Item = crate::Result<Event>> + Send>>;
