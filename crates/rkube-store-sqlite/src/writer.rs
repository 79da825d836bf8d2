//! The single writer thread: it owns the write connection and group-commits whatever requests are waiting.
//!
//! Each round drains the queue, applies every request in one `BEGIN IMMEDIATE` transaction (each with
//! its own compare-and-swap check and its own new revision), commits (fsynced: `synchronous = FULL`)
//! and only then answers the callers, so an acknowledged write survives `kill -9`. Because ids are
//! assigned under SQLite's file-wide write lock and committed before the lock is released, revisions
//! become visible in order, even with another process writing the same file.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rkube_store::{Error, Event, EventKind, KeyValue, Result, Revision};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{oneshot, watch};

use crate::compactor::Compactor;
use crate::recent::Recent;
use crate::schema;
use crate::sqlerr;
use crate::watch::Registry;

/// At most this many requests share one transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;
/// At most this many value bytes share one transaction.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// One change to a key.
pub(crate) enum Op {
    Create { key: String, value: Vec<u8> },
    Update { key: String, value: Vec<u8>, expected: Revision },
    Delete { key: String, expected: Option<Revision> },
}

/// What a successful [`Op`] returns.
pub(crate) enum Outcome {
    Put(KeyValue),
    Deleted(KeyValue, Revision),
}

/// A request to the writer thread.
pub(crate) enum Command {
    Write(Op, oneshot::Sender<Result<Outcome>>),
    Compact(Revision, oneshot::Sender<Result<()>>),
}

/// What the store keeps of its writer: the queue, and the thread to join on drop.
pub(crate) struct Writer {
    tx: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    location: String,
}

/// Settings the writer thread needs.
pub(crate) struct WriterConfig {
    pub(crate) location: String,
    pub(crate) compaction_interval: Duration,
    pub(crate) compaction_keep: Revision,
    pub(crate) watch_grace: Duration,
    /// Where committed changes go for this process's watches.
    pub(crate) recent: Arc<Recent>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it announces each committed revision on `notify`.
    pub(crate) fn spawn(
        conn: Connection,
        config: WriterConfig,
        notify: watch::Sender<Revision>,
        watchers: Arc<Registry>,
    ) -> Result<Writer> {
        let (tx, rx) = std::sync::mpsc::channel();
        let location = config.location.clone();
        let compactor = Compactor::new(
            config.location.clone(),
            config.compaction_keep,
            config.watch_grace,
            watchers,
            config.recent.clone(),
        );
        let state = State {
            conn,
            location: config.location,
            notify,
            recent: config.recent,
            compactor,
            interval: config.compaction_interval,
            commits: 0,
        };
        let thread = std::thread::Builder::new()
            .name("rkube-sqlite-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::Unavailable {
                location: location.clone(),
                message: format!("cannot start the writer thread: {e}; check the process's thread limit"),
                source: Some(Box::new(e)),
            })?;
        Ok(Writer { tx: Some(tx), thread: Some(thread), location })
    }

    /// Queues `op` and waits for its commit.
    pub(crate) async fn write(&self, op: Op) -> Result<Outcome> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Write(op, reply))?;
        rx.await.map_err(|_| sqlerr::closed(&self.location, "write"))?
    }

    /// Queues a compaction and waits until its history is deleted.
    pub(crate) async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Compact(revision, reply))?;
        rx.await.map_err(|_| sqlerr::closed(&self.location, "compact"))?
    }

    fn send(&self, command: Command) -> Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| sqlerr::closed(&self.location, "write"))?;
        tx.send(command).map_err(|_| sqlerr::closed(&self.location, "write"))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current transaction; joining means the file
        // is no longer written once the store is gone.
        self.tx.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(location = %self.location, "the SQLite writer thread panicked");
        }
    }
}

struct State {
    conn: Connection,
    location: String,
    notify: watch::Sender<Revision>,
    recent: Arc<Recent>,
    compactor: Compactor,
    interval: Duration,
    /// Transactions committed, for the shutdown log and tests.
    commits: u64,
}

impl State {
    fn run(mut self, rx: Receiver<Command>) {
        let mut next_auto = (!self.interval.is_zero()).then(|| Instant::now() + self.interval);
        loop {
            let wait = match (self.compactor.wait(), next_auto) {
                (Some(w), _) => w,
                (None, Some(at)) => at.saturating_duration_since(Instant::now()),
                (None, None) => Duration::MAX,
            };
            let first = match rx.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.round(first, &rx);
            if let Some(at) = next_auto
                && Instant::now() >= at
            {
                self.compactor.auto(&self.conn);
                next_auto = Some(Instant::now() + self.interval);
            }
            self.compactor.step(&self.conn);
        }
        tracing::debug!(location = %self.location, commits = self.commits, "SQLite writer stopped");
    }

    /// Takes `first` and whatever else is already queued (up to the batch limits) and commits the
    /// writes among them in one transaction; compactions are recorded on the way.
    fn round(&mut self, first: Option<Command>, rx: &Receiver<Command>) {
        let mut writes = Vec::new();
        let mut bytes = 0;
        let mut next = first;
        while let Some(command) = next {
            match command {
                Command::Write(op, reply) => {
                    bytes += match &op {
                        Op::Create { value, .. } | Op::Update { value, .. } => value.len(),
                        Op::Delete { .. } => 0,
                    };
                    writes.push((op, reply));
                }
                Command::Compact(revision, reply) => self.compactor.request(&self.conn, revision, Some(reply)),
            }
            if writes.len() >= MAX_BATCH || bytes >= MAX_BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !writes.is_empty() {
            self.commit(writes);
        }
    }

    /// Applies a batch in one transaction; if SQLite fails it, retries each request alone so that
    /// only the request that fails gets the error.
    fn commit(&mut self, writes: Vec<(Op, oneshot::Sender<Result<Outcome>>)>) {
        let ops: Vec<&Op> = writes.iter().map(|(op, _)| op).collect();
        match apply(&self.conn, &ops) {
            Ok(Applied { outcomes, before, events }) => {
                self.announce(before, events);
                for ((_, reply), outcome) in writes.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) if writes.len() == 1 => {
                let err = sqlerr::map(&self.location, "commit a write", e);
                for (_, reply) in writes {
                    let _ = reply.send(Err(sqlerr::duplicate(&err)));
                }
            }
            Err(e) => {
                tracing::warn!(location = %self.location, error = %e, "group commit failed; retrying each write alone");
                for (op, reply) in writes {
                    let result = match apply(&self.conn, &[&op]) {
                        Ok(Applied { mut outcomes, before, events }) => {
                            self.announce(before, events);
                            outcomes.pop().unwrap_or_else(|| {
                                Err(sqlerr::backend(&self.location, "write produced no outcome".into()))
                            })
                        }
                        Err(e) => Err(sqlerr::map(&self.location, "commit a write", e)),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// Hands a committed batch to this process's watches: the changes first, then the revision that wakes them.
    fn announce(&mut self, before: Revision, events: Vec<Event>) {
        self.commits += 1;
        if let Some(rev) = events.last().map(Event::revision) {
            self.recent.append(before, events);
            self.notify.send_replace(rev);
        }
    }
}

/// What one committed transaction did.
struct Applied {
    /// Each op's outcome, in order.
    outcomes: Vec<Result<Outcome>>,
    /// The revision before the transaction: its changes are the revisions right after it.
    before: Revision,
    /// The changes, as watches see them.
    events: Vec<Event>,
}

/// Applies `ops` in one transaction.
fn apply(conn: &Connection, ops: &[&Op]) -> rusqlite::Result<Applied> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let mut rev = schema::revisions(&tx)?.current;
    let before = rev;
    let mut events = Vec::new();
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        let (outcome, event) = apply_one(&tx, op, &mut rev)?;
        outcomes.push(outcome);
        events.extend(event);
    }
    tx.commit()?;
    Ok(Applied { outcomes, before, events })
}

/// The key's live row (a subquery, not a join: see `read::GET_SQL`).
pub(crate) const LIVE_SQL: &str =
    "SELECT id, create_revision FROM log WHERE id = (SELECT id FROM current WHERE name = ?1)";

/// The key's live row: (mod revision, create revision).
fn live(conn: &Connection, key: &str) -> rusqlite::Result<Option<(Revision, Revision)>> {
    conn.prepare_cached(LIVE_SQL)?.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional()
}

fn insert(
    conn: &Connection,
    id: Revision,
    key: &str,
    flags: (bool, bool),
    create: Revision,
    prev: Revision,
    value: &[u8],
) -> rusqlite::Result<()> {
    // The id is given rather than left to AUTOINCREMENT so create_revision can be stored in the same row;
    // under the write lock it is exactly what AUTOINCREMENT would pick, and sqlite_sequence follows it.
    conn.prepare_cached(
        "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![id, key, flags.0, flags.1, create, prev, value])?;
    Ok(())
}

/// The key's live row with its value: (mod revision, create revision, value), for the change's previous value.
const LIVE_VALUE_SQL: &str =
    "SELECT id, create_revision, value FROM log WHERE id = (SELECT id FROM current WHERE name = ?1)";

fn live_value(conn: &Connection, key: &str) -> rusqlite::Result<Option<(Revision, Revision, Vec<u8>)>> {
    conn.prepare_cached(LIVE_VALUE_SQL)?.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
}

/// Applies one op; on success also returns the change as a watch sees it.
fn apply_one(conn: &Connection, op: &Op, rev: &mut Revision) -> rusqlite::Result<(Result<Outcome>, Option<Event>)> {
    match op {
        Op::Create { key, value } => {
            if live(conn, key)?.is_some() {
                return Ok((Err(Error::AlreadyExists { key: key.clone() }), None));
            }
            let id = *rev + 1;
            insert(conn, id, key, (true, false), id, 0, value)?;
            conn.prepare_cached("INSERT OR REPLACE INTO current (name, id) VALUES (?1, ?2)")?
                .execute(rusqlite::params![key, id])?;
            *rev = id;
            let kv = KeyValue { key: key.clone(), value: value.clone(), create_revision: id, mod_revision: id };
            let event = Event { kind: EventKind::Added, kv: kv.clone(), prev: None };
            Ok((Ok(Outcome::Put(kv)), Some(event)))
        }
        Op::Update { key, value, expected } => {
            let Some((actual, create, prev_value)) = live_value(conn, key)? else {
                return Ok((Err(Error::NotFound { key: key.clone() }), None));
            };
            if actual != *expected {
                return Ok((Err(Error::Conflict { key: key.clone(), expected: *expected, actual }), None));
            }
            let id = *rev + 1;
            insert(conn, id, key, (false, false), create, actual, value)?;
            conn.prepare_cached("UPDATE current SET id = ?2 WHERE name = ?1")?.execute(rusqlite::params![key, id])?;
            *rev = id;
            let kv = KeyValue { key: key.clone(), value: value.clone(), create_revision: create, mod_revision: id };
            let prev = KeyValue { key: key.clone(), value: prev_value, create_revision: create, mod_revision: actual };
            let event = Event { kind: EventKind::Modified, kv: kv.clone(), prev: Some(prev) };
            Ok((Ok(Outcome::Put(kv)), Some(event)))
        }
        Op::Delete { key, expected } => {
            let Some((actual, create, value)) = live_value(conn, key)? else {
                return Ok((Err(Error::NotFound { key: key.clone() }), None));
            };
            if let Some(expected) = expected
                && actual != *expected
            {
                return Ok((Err(Error::Conflict { key: key.clone(), expected: *expected, actual }), None));
            }
            let id = *rev + 1;
            insert(conn, id, key, (false, true), create, actual, &[])?;
            conn.prepare_cached("DELETE FROM current WHERE name = ?1")?.execute([key])?;
            *rev = id;
            let prev = KeyValue { key: key.clone(), value, create_revision: create, mod_revision: actual };
            // As the log reads it back (watch.rs): a deletion carries the last value at the deletion's revision.
            let kv = KeyValue { mod_revision: id, ..prev.clone() };
            let event = Event { kind: EventKind::Deleted, kv, prev: Some(prev.clone()) };
            Ok((Ok(Outcome::Deleted(prev, id)), Some(event)))
        }
    }
}

#[cfg(test)]
mod tests;
