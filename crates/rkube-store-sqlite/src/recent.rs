//! The changes this process committed last, kept in memory so that watches read them without a query.
//!
//! A watch woken by this process's commit would otherwise read the log back from SQLite (a query and a
//! copy of every value, plus each previous value) for changes the writer thread held a moment before. The
//! writer appends each committed batch here before it announces the revision; a watch whose position lies
//! inside the window takes its events from memory. The window only ever holds an unbroken run of
//! revisions: when another process sharing the file wrote in between (the batch does not start where the
//! window ends), the window restarts at the batch, and a watch behind it reads the gap from the log as before.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rkube_store::{Event, Revision};

/// At most this many changes are kept.
const MAX_EVENTS: usize = 8192;
/// At most this many value bytes (values and previous values) are kept.
const MAX_BYTES: usize = 64 << 20;

/// The window: every change with a revision in `(start, end]`, in order.
#[derive(Default)]
struct Window {
    start: Revision,
    events: VecDeque<Arc<Event>>,
    bytes: usize,
}

impl Window {
    fn end(&self) -> Revision {
        self.events.back().map_or(self.start, |e| e.revision())
    }
}

/// Shared by the writer (which appends) and the watch tasks (which read).
#[derive(Default)]
pub(crate) struct Recent {
    window: Mutex<Window>,
}

/// What a watch takes from the window.
pub(crate) struct Taken {
    /// The changes under the watch's prefix after its position.
    pub(crate) events: Vec<Event>,
    /// Every revision up to here was examined.
    pub(crate) last: Revision,
}

fn size(e: &Event) -> usize {
    e.kv.value.len() + e.prev.as_ref().map_or(0, |p| p.value.len())
}

impl Recent {
    /// Appends the changes of one committed batch, whose revisions follow `before` without a gap.
    pub(crate) fn append(&self, before: Revision, events: Vec<Event>) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.end() != before {
            // Another process committed in between (or this is the first batch): the window restarts here.
            w.events.clear();
            w.bytes = 0;
            w.start = before;
        }
        for event in events {
            w.bytes += size(&event);
            w.events.push_back(Arc::new(event));
        }
        while w.events.len() > MAX_EVENTS || (w.bytes > MAX_BYTES && w.events.len() > 1) {
            let Some(dropped) = w.events.pop_front() else { break };
            w.bytes -= size(&dropped);
            w.start = dropped.revision();
        }
    }

    /// Drops the changes at or before `revision`, which compaction is deleting from the log: a watch that has
    /// not read them ends with `Expired`, as the log says, instead of being served from memory.
    pub(crate) fn forget_through(&self, revision: Revision) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        while w.events.front().is_some_and(|e| e.revision() <= revision) {
            if let Some(dropped) = w.events.pop_front() {
                w.bytes -= size(&dropped);
            }
        }
        w.start = w.start.max(revision);
    }

    /// The changes under `prefix` after revision `after`, at most `limit` of them, if the window holds every
    /// revision after `after`; `None` when the watch is behind the window or past its end (the window then
    /// knows nothing of what follows: the watch must read the log).
    pub(crate) fn take(&self, prefix: &str, after: Revision, limit: usize) -> Option<Taken> {
        let w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if after < w.start || after > w.end() {
            return None;
        }
        // Revisions are consecutive in the window, so the position is arithmetic.
        let skip = usize::try_from(after - w.start).ok()?;
        let mut events = Vec::new();
        let mut last = w.end();
        for e in w.events.iter().skip(skip) {
            if events.len() == limit {
                last = events.last().map_or(after, Event::revision);
                break;
            }
            if e.kv.key.starts_with(prefix) {
                events.push(Event::clone(e));
            }
        }
        Some(Taken { events, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_store::{EventKind, KeyValue};

    fn added(key: &str, rev: Revision) -> Event {
        let kv = KeyValue { key: key.into(), value: b"v".to_vec(), create_revision: rev, mod_revision: rev };
        Event { kind: EventKind::Added, kv, prev: None }
    }

    #[test]
    fn serves_a_watch_inside_the_window_and_refuses_one_behind_it() {
        let r = Recent::default();
        r.append(10, vec![added("/a/1", 11), added("/b/1", 12), added("/a/2", 13)]);
        let t = r.take("/a/", 10, 100).expect("inside");
        assert_eq!(t.events.iter().map(Event::revision).collect::<Vec<_>>(), vec![11, 13]);
        assert_eq!(t.last, 13);
        let t = r.take("/a/", 11, 100).expect("inside");
        assert_eq!(t.events.iter().map(Event::revision).collect::<Vec<_>>(), vec![13]);
        assert!(r.take("/a/", 9, 100).is_none(), "revision 10 is not in the window");
        let t = r.take("/a/", 13, 100).expect("at the end");
        assert!(t.events.is_empty());
        assert_eq!(t.last, 13);
        assert!(r.take("/a/", 14, 100).is_none(), "past the end the window knows nothing");
    }

    #[test]
    fn a_gap_from_another_writer_restarts_the_window() {
        let r = Recent::default();
        r.append(10, vec![added("/a/1", 11)]);
        // Revisions 12..=14 were written by another process.
        r.append(14, vec![added("/a/2", 15)]);
        assert!(r.take("/a/", 11, 100).is_none(), "the gap must be read from the log");
        assert_eq!(r.take("/a/", 14, 100).expect("inside").events.len(), 1);
    }

    #[test]
    fn the_limit_stops_at_the_last_event_taken() {
        let r = Recent::default();
        r.append(0, (1..=5).map(|i| added(&format!("/a/{i}"), i)).collect());
        let t = r.take("/a/", 0, 2).expect("inside");
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.last, 2);
    }

    #[test]
    fn compacted_changes_leave_the_window() {
        let r = Recent::default();
        r.append(0, (1..=5).map(|i| added("/a/x", i)).collect());
        r.forget_through(3);
        assert!(r.take("/a/", 2, 10).is_none(), "a watch behind the compaction reads the log (and expires)");
        assert_eq!(r.take("/a/", 3, 10).expect("inside").events.len(), 2);
        r.forget_through(9);
        assert!(r.take("/a/", 5, 10).is_none());
        // The next batch of this process follows the current revision, not the window's claimed start.
        r.append(12, vec![added("/a/y", 13)]);
        assert_eq!(r.take("/a/", 12, 10).expect("inside").events.len(), 1);
    }

    #[test]
    fn old_changes_leave_the_window() {
        let r = Recent::default();
        r.append(0, (1..=(MAX_EVENTS as Revision + 5)).map(|i| added("/a/x", i)).collect());
        assert!(r.take("/a/", 4, 10).is_none());
        assert!(r.take("/a/", 5, 10).is_some());
    }
}
