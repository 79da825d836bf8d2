//! Compaction, run by the writer thread: first the compacted revision is recorded (reads and new watches
//! older than it fail from then on), then superseded rows and tombstones are deleted in small chunks
//! between the writer's other transactions, so writes are never blocked for long.
//!
//! Deleting rows can strand a watch that has not yet read them. Watches in this process report how far
//! they have read; the first chunk waits (up to a grace period) until they have passed the compaction
//! point. The first chunk also records that point as `purged`, which every watch checks in the same
//! snapshot as its reads, so a watch that lags (or lives in another process) ends with `Expired`
//! rather than missing events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rkube_store::{Error, Result, Revision};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use crate::recent::Recent;
use crate::schema;
use crate::sqlerr;
use crate::watch::Registry;

/// Rows examined per purge transaction.
const CHUNK: i64 = 1000;
/// How often the writer looks again whether lagging watches have caught up.
const GRACE_POLL: Duration = Duration::from_millis(20);

/// The writer's compaction state: at most one purge in progress.
pub(crate) struct Compactor {
    location: String,
    keep: Revision,
    grace: Duration,
    watchers: Arc<Registry>,
    recent: Arc<Recent>,
    job: Option<Job>,
}

struct Job {
    target: Revision,
    /// Rows with ids up to here are done.
    cursor: Revision,
    started: bool,
    deadline: Instant,
    replies: Vec<oneshot::Sender<Result<()>>>,
}

impl Compactor {
    /// A compactor that, when run automatically, keeps the last `keep` revisions.
    pub(crate) fn new(
        location: String,
        keep: Revision,
        grace: Duration,
        watchers: Arc<Registry>,
        recent: Arc<Recent>,
    ) -> Self {
        Compactor { location, keep, grace, watchers, recent, job: None }
    }

    /// How long the writer may block waiting for requests before calling [`Compactor::step`] again.
    pub(crate) fn wait(&self) -> Option<Duration> {
        self.job.as_ref().map(|job| if job.started { Duration::ZERO } else { GRACE_POLL })
    }

    /// Records `revision` as compacted and schedules the purge; `reply` is answered when the purge ends.
    pub(crate) fn request(
        &mut self,
        conn: &Connection,
        revision: Revision,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) {
        if let Err(e) = self.mark(conn, revision) {
            if let Some(reply) = reply {
                let _ = reply.send(Err(e));
            }
            return;
        }
        // A newer compaction covers an older one's rows; restart from the bottom since rows the older
        // one kept may be superseded now.
        let mut replies = self.job.take().map(|job| job.replies).unwrap_or_default();
        replies.extend(reply);
        let deadline = Instant::now() + self.grace;
        self.job = Some(Job { target: revision, cursor: 0, started: false, deadline, replies });
    }

    fn mark(&self, conn: &Connection, revision: Revision) -> Result<()> {
        let map = |e| sqlerr::map(&self.location, &format!("compact to revision {revision}"), e);
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(map)?;
        let revs = schema::revisions(&tx).map_err(map)?;
        if revision <= revs.compacted {
            return Err(Error::Expired { requested: revision, compacted: revs.compacted });
        }
        if revision > revs.current {
            return Err(Error::FutureRevision { requested: revision, current: revs.current });
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'compacted'", [revision]).map_err(map)?;
        tx.commit().map_err(map)
    }

    /// The periodic compaction: keeps the last `keep` revisions.
    pub(crate) fn auto(&mut self, conn: &Connection) {
        let revs = match schema::revisions(conn) {
            Ok(revs) => revs,
            Err(e) => {
                tracing::warn!(location = %self.location, error = %e, "automatic compaction: cannot read revisions");
                return;
            }
        };
        let target = revs.current - self.keep.max(0);
        if target > revs.compacted {
            tracing::debug!(location = %self.location, revision = target, "automatic compaction");
            self.request(conn, target, None);
        }
    }

    /// Runs one purge chunk of the pending compaction, if any and if the watches allow it.
    pub(crate) fn step(&mut self, conn: &Connection) {
        let Some(job) = &mut self.job else { return };
        if !job.started {
            let caught_up = self.watchers.min_position().is_none_or(|p| p >= job.target);
            if !caught_up && Instant::now() < job.deadline {
                return;
            }
            if !caught_up {
                tracing::warn!(location = %self.location, revision = job.target, "a watch is lagging behind the compaction; it will end with Expired");
            }
        }
        let result = purge_chunk(conn, job.target, job.cursor, !job.started);
        if !job.started && result.is_ok() {
            self.recent.forget_through(job.target);
        }
        job.started = true;
        let done = match result {
            Ok(hi) => {
                job.cursor = hi;
                (hi >= job.target).then_some(Ok(()))
            }
            Err(e) => {
                Some(Err(sqlerr::map(&self.location, &format!("delete history up to revision {}", job.target), e)))
            }
        };
        if let Some(result) = done {
            if let Err(e) = &result {
                tracing::warn!(location = %self.location, error = %e, "compaction failed");
            }
            for reply in self.job.take().map(|job| job.replies).unwrap_or_default() {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(sqlerr::duplicate));
            }
        }
    }
}

/// Deletes, among rows with ids in `(lo, hi]`, those superseded at or before `target` and tombstones;
/// `hi` is at most `CHUNK` rows above `lo`. Returns `hi`.
fn purge_chunk(conn: &Connection, target: Revision, lo: Revision, first: bool) -> rusqlite::Result<Revision> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if first {
        tx.execute("UPDATE meta SET value = MAX(value, ?1) WHERE key = 'purged'", [target])?;
    }
    let hi: Option<Revision> = tx
        .prepare_cached("SELECT id FROM log WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT 1 OFFSET ?3")?
        .query_row([lo, target, CHUNK - 1], |r| r.get(0))
        .optional()?;
    let hi = hi.unwrap_or(target);
    tx.prepare_cached(
        "DELETE FROM log WHERE id > ?1 AND id <= ?2
           AND (deleted = 1 OR EXISTS (SELECT 1 FROM log AS s WHERE s.name = log.name AND s.id > log.id AND s.id <= ?3))",
    )?
    .execute([lo, hi, target])?;
    tx.commit()?;
    Ok(hi)
}

#[cfg(test)]
mod tests;
