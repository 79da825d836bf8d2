//! Watches: one task per watch reads the log after its last revision whenever the writer announces a
//! commit, and on a timer so that writes by another process sharing the file are seen too. Woken by a
//! commit of this process, it takes the changes from the writer's in-memory window instead (`recent.rs`)
//! when that window holds every revision after its position; the timer always reads the log.
//!
//! Nothing is skipped: ids are assigned and committed in order under SQLite's write lock, so once a
//! snapshot shows revision N every smaller revision that will ever exist is visible in it too. Events
//! go through a bounded channel, so a slow consumer stops the task from reading instead of filling memory.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use rkube_store::{Error, Event, EventKind, KeyValue, Result, Revision, WatchStream, prefix_end};
use rusqlite::Connection;
use tokio::sync::{mpsc, watch};

use crate::read::{self, ReadPool};
use crate::recent::Recent;
use crate::sqlerr;

/// Events buffered per watch before its task waits for the consumer.
const CHANNEL: usize = 256;
/// Events read per query.
const BATCH: i64 = 256;
/// Revisions examined per query, so a watch on a quiet prefix costs little when other keys change a lot.
const SCAN_WINDOW: i64 = 10_000;

/// How far each live watch in this process has read, so compaction can wait for it.
#[derive(Default)]
pub(crate) struct Registry {
    positions: Mutex<Vec<Weak<AtomicI64>>>,
}

impl Registry {
    pub(crate) fn register(&self, at: Revision) -> Arc<AtomicI64> {
        let position = Arc::new(AtomicI64::new(at));
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        positions.retain(|p| p.strong_count() > 0);
        positions.push(Arc::downgrade(&position));
        position
    }

    /// The lowest revision up to which a live watch has read, if any watch is live.
    pub(crate) fn min_position(&self) -> Option<Revision> {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        positions.iter().filter_map(Weak::upgrade).map(|p| p.load(Ordering::Acquire)).min()
    }
}

/// Starts a watch of `prefix` after revision `after`.
pub(crate) async fn start(
    pool: Arc<ReadPool>,
    recent: Arc<Recent>,
    registry: &Registry,
    notify: watch::Receiver<Revision>,
    prefix: &str,
    after: Revision,
    poll_interval: Duration,
) -> Result<WatchStream> {
    // Registered before the check so that a compaction racing with it waits for this watch.
    let position = registry.register(after);
    let revs = pool.run("start a watch", read::revisions).await?;
    if after < revs.compacted {
        return Err(Error::Expired { requested: after, compacted: revs.compacted });
    }
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let task = Task { pool, recent, notify, prefix: prefix.into(), last: after, position, tx, poll_interval };
    tokio::spawn(task.run());
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

struct Task {
    pool: Arc<ReadPool>,
    recent: Arc<Recent>,
    notify: watch::Receiver<Revision>,
    prefix: Arc<str>,
    last: Revision,
    position: Arc<AtomicI64>,
    tx: mpsc::Sender<Result<Event>>,
    poll_interval: Duration,
}

/// What one query returned.
pub(crate) struct Page {
    events: Vec<Event>,
    /// Every revision up to here has been examined.
    last: Revision,
    /// More revisions are already committed: query again at once.
    more: bool,
}

impl Task {
    async fn run(mut self) {
        // The first read is from the log: the window may not reach back to where the watch starts.
        let mut from_log = true;
        loop {
            // Marked seen before reading, so a commit after the read wakes the wait below.
            self.notify.borrow_and_update();
            let page = match from_log {
                true => None,
                false => self.recent.take(&self.prefix, self.last, BATCH as usize).map(|t| Page {
                    more: t.events.len() == BATCH as usize,
                    events: t.events,
                    last: t.last,
                }),
            };
            let page = match page {
                Some(page) => page,
                None => {
                    let (prefix, last) = (self.prefix.clone(), self.last);
                    match self.pool.run("watch", move |conn, location| poll(conn, location, &prefix, last)).await {
                        Ok(page) => page,
                        Err(e) => {
                            let _ = self.tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            };
            for event in page.events {
                if self.tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            self.last = page.last;
            self.position.store(page.last, Ordering::Release);
            if page.more {
                from_log = false;
                continue;
            }
            tokio::select! {
                changed = self.notify.changed() => match changed {
                    Ok(()) => from_log = false,
                    // The store was dropped: end the stream, as the in-memory store does.
                    Err(_) => return,
                },
                _ = tokio::time::sleep(self.poll_interval) => from_log = true,
                _ = self.tx.closed() => return,
            }
        }
    }
}

/// The next page of a watch. NOT INDEXED: walk the log by id (the rowid is still used), never by name then
/// sort. The limit is written into the text and the previous value read by a subquery: SQLite 3.54 plans with a
/// bound LIMIT's value and a join's bound key, so either makes it re-prepare the cached statement every poll.
pub(crate) static POLL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, l.value,
                (SELECT p.value FROM log AS p WHERE p.id = l.prev_revision)
         FROM log AS l NOT INDEXED
         WHERE l.id > ?1 AND l.id <= ?2 AND l.name >= ?3 AND l.name < ?4 ORDER BY l.id LIMIT {BATCH}"
    )
});

/// Reads the next events under `prefix` after `last`, or fails with `Expired` if compaction has
/// started deleting rows this watch has not read.
pub(crate) fn poll(conn: &Connection, location: &str, prefix: &str, last: Revision) -> Result<Page> {
    let revs = read::revisions(conn, location)?;
    if revs.purged > last {
        return Err(Error::Expired { requested: last, compacted: revs.compacted });
    }
    let window_end = revs.current.min(last.saturating_add(SCAN_WINDOW));
    let map = |e| sqlerr::map(location, &format!("watch {prefix:?} after revision {last}"), e);
    let mut stmt = conn.prepare_cached(&POLL_SQL).map_err(map)?;
    let end = prefix_end(prefix);
    let rows = stmt
        .query_map(rusqlite::params![last, window_end, prefix, end], |r| {
            Ok(Row {
                id: r.get(0)?,
                key: r.get(1)?,
                created: r.get(2)?,
                deleted: r.get(3)?,
                create_revision: r.get(4)?,
                prev_revision: r.get(5)?,
                value: r.get(6)?,
                prev_value: r.get(7)?,
            })
        })
        .map_err(map)?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)?;
    let full = rows.len() as i64 == BATCH;
    let events = rows.into_iter().map(|row| row.into_event(location)).collect::<Result<Vec<_>>>()?;
    Ok(match events.last() {
        Some(event) if full => Page { last: event.revision(), events, more: true },
        _ => Page { events, last: last.max(window_end), more: window_end < revs.current },
    })
}

struct Row {
    id: Revision,
    key: String,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: Vec<u8>,
    prev_value: Option<Vec<u8>>,
}

impl Row {
    fn into_event(self, location: &str) -> Result<Event> {
        let Row { id, key, created, deleted, create_revision, prev_revision, value, prev_value } = self;
        if created {
            let kv = KeyValue { key, value, create_revision, mod_revision: id };
            return Ok(Event { kind: EventKind::Added, kv, prev: None });
        }
        // Compaction keeps the previous row of every retained change (see compactor.rs), so a gap here is damage.
        let prev_value = prev_value.ok_or_else(|| Error::Corrupt {
            location: location.to_owned(),
            message: format!("log row {prev_revision}, the version of {key:?} before revision {id}, is missing; restore the store from a backup"),
            source: None,
        })?;
        let prev = KeyValue { key: key.clone(), value: prev_value, create_revision, mod_revision: prev_revision };
        let (kind, value) =
            if deleted { (EventKind::Deleted, prev.value.clone()) } else { (EventKind::Modified, value) };
        Ok(Event { kind, kv: KeyValue { key, value, create_revision, mod_revision: id }, prev: Some(prev) })
    }
}
