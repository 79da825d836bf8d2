//! Handing the objects this server writes to the watch cache, so it keeps them instead of parsing the stored
//! bytes again, and so the writer's answer and every watcher send one serialization.
//!
//! A write is announced to the cache twice, in an order nobody controls: by the store's event (the cache's
//! follower applies it) and by the write's own return to the registry. Before writing, the registry leaves the
//! object with the bytes it is storing (`pend`). Whichever comes first takes it: the event, if its bytes are
//! those bytes (so the object is exactly what parsing them would give), or the write's return, which then leaves
//! the finished object for the event by revision (`offered`). All of it is under one lock with the revision
//! applied last, so nothing is kept after its event has passed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rkube_store::Revision;
use serde_json::Value;

use super::{CachedObject, with_revision};

#[derive(Default)]
pub(super) struct Handover {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every store event up to here has been applied.
    applied: Revision,
    /// Finished objects whose writes returned before their events came, by revision.
    offered: BTreeMap<Revision, (String, Arc<CachedObject>)>,
    /// Objects being written, by key.
    pending: HashMap<String, Vec<Pending>>,
    /// Objects the cache took from `pending` before their writes returned, by ticket.
    taken: HashMap<u64, Arc<CachedObject>>,
    next_ticket: u64,
}

struct Pending {
    ticket: u64,
    bytes: Vec<u8>,
    value: Value,
}

impl Handover {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `value`, about to be stored under `key` as `bytes`; returns its ticket.
    pub(super) fn pend(&self, key: &str, bytes: &[u8], value: Value) -> u64 {
        let mut inner = self.lock();
        inner.next_ticket += 1;
        let ticket = inner.next_ticket;
        inner.pending.entry(key.to_owned()).or_default().push(Pending { ticket, bytes: bytes.to_vec(), value });
        ticket
    }

    /// The write of `ticket` committed at `revision`: the object as stored, shared with the cache.
    pub(super) fn written(&self, key: &str, ticket: u64, revision: Revision) -> Option<Arc<CachedObject>> {
        let mut inner = self.lock();
        if let Some(object) = inner.taken.remove(&ticket) {
            return Some(object);
        }
        let p = take_pending(&mut inner.pending, key, |p| p.ticket == ticket)?;
        let object = Arc::new(CachedObject::from_stored(with_revision(p.value, revision), revision, p.bytes));
        if revision > inner.applied {
            inner.offered.insert(revision, (key.to_owned(), object.clone()));
        }
        Some(object)
    }

    /// The write of `ticket` failed or was abandoned.
    pub(super) fn forget(&self, key: &str, ticket: u64) {
        let mut inner = self.lock();
        inner.taken.remove(&ticket);
        take_pending(&mut inner.pending, key, |p| p.ticket == ticket);
    }

    /// The store's event for `key` at `revision` (with the stored `bytes`, `None` for a deletion) is being
    /// applied: the object to keep for it, if this server wrote it.
    pub(super) fn applying(&self, key: &str, revision: Revision, bytes: Option<&[u8]>) -> Option<Arc<CachedObject>> {
        let mut inner = self.lock();
        inner.applied = inner.applied.max(revision);
        let offered = inner.offered.remove(&revision).filter(|(k, _)| k == key).map(|(_, o)| o);
        // Older offers were never applied from here (a reload passed them): they are stale.
        if inner.offered.first_key_value().is_some_and(|(r, _)| *r <= revision) {
            inner.offered = inner.offered.split_off(&(revision + 1));
        }
        let bytes = bytes?;
        if offered.is_some() {
            return offered;
        }
        let pending = take_pending(&mut inner.pending, key, |p| p.bytes == bytes)?;
        let object =
            Arc::new(CachedObject::from_stored(with_revision(pending.value, revision), revision, pending.bytes));
        inner.taken.insert(pending.ticket, object.clone());
        Some(object)
    }

    /// The cache reloaded at `revision`: what was offered up to it is stale.
    pub(super) fn reloaded(&self, revision: Revision) {
        self.applying("", revision, None);
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.offered.is_empty() && inner.pending.is_empty() && inner.taken.is_empty()
    }
}

fn take_pending(
    pending: &mut HashMap<String, Vec<Pending>>,
    key: &str,
    which: impl Fn(&Pending) -> bool,
) -> Option<Pending> {
    let list = pending.get_mut(key)?;
    let found = list.iter().position(which).map(|i| list.swap_remove(i));
    if list.is_empty() {
        pending.remove(key);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "/registry/pods/default/p";

    fn value() -> Value {
        serde_json::json!({"metadata": {"name": "p"}})
    }

    #[test]
    fn the_write_returning_first_leaves_the_object_for_its_event() {
        let h = Handover::default();
        let ticket = h.pend(KEY, b"bytes", value());
        let written = h.written(KEY, ticket, 7).expect("pending");
        assert_eq!(written.value.pointer("/metadata/resourceVersion"), Some(&serde_json::json!("7")));
        let kept = h.applying(KEY, 7, Some(b"bytes")).expect("offered");
        assert!(Arc::ptr_eq(&kept, &written));
        assert!(h.is_empty());
    }

    #[test]
    fn the_event_coming_first_takes_the_object_and_the_write_picks_it_up() {
        let h = Handover::default();
        let ticket = h.pend(KEY, b"bytes", value());
        let kept = h.applying(KEY, 7, Some(b"bytes")).expect("pending, same bytes");
        let written = h.written(KEY, ticket, 7).expect("taken");
        assert!(Arc::ptr_eq(&kept, &written));
        assert!(h.is_empty());
    }

    #[test]
    fn only_the_same_bytes_under_the_same_key_are_taken() {
        let h = Handover::default();
        let ticket = h.pend(KEY, b"bytes", value());
        assert!(h.applying(KEY, 7, Some(b"other")).is_none(), "another writer's change");
        assert!(h.applying("/registry/pods/default/q", 8, Some(b"bytes")).is_none(), "another key");
        assert!(h.applying(KEY, 9, None).is_none(), "a deletion");
        h.forget(KEY, ticket);
        assert!(h.is_empty());
    }

    #[test]
    fn an_object_written_after_its_event_passed_is_not_kept() {
        let h = Handover::default();
        let ticket = h.pend(KEY, b"bytes", value());
        // The event was applied by parsing (say its bytes differed), then the write returns.
        assert!(h.applying(KEY, 7, Some(b"other")).is_none());
        assert!(h.written(KEY, ticket, 7).is_some());
        assert!(h.is_empty(), "nothing waits for an event that has passed");
        // An offer the event never reached (a reload passed it) goes with the next event after it.
        let ticket = h.pend(KEY, b"bytes", value());
        assert!(h.written(KEY, ticket, 9).is_some());
        h.reloaded(12);
        assert!(h.is_empty());
    }
}
