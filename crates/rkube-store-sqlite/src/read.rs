//! Reads: a small pool of query-only connections used from `spawn_blocking`, and the get and list queries.
//!
//! Every read runs in one explicit transaction, so the revisions it checks and the rows it returns
//! come from the same WAL snapshot even while the writer commits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rkube_store::{Error, KeyValue, ListOptions, ListResult, Result, Revision, prefix_end};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::schema::{self, Revisions};
use crate::sqlerr;

/// Query-only connections, opened lazily, at most `size` in use at once.
pub(crate) struct ReadPool {
    path: PathBuf,
    location: String,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool for the database at `path` with at most `size` concurrent readers.
    pub(crate) fn new(path: PathBuf, size: usize, busy_timeout: Duration) -> Self {
        let location = path.display().to_string();
        ReadPool {
            path,
            location,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// The file, for error messages.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` on a pooled connection in a blocking thread, inside one read transaction.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| sqlerr::closed(&self.location, op))?;
        let pool = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.take()?;
            let result = in_snapshot(&conn, &pool.location, op, f);
            pool.put(conn);
            result
        })
        .await;
        joined.map_err(|e| sqlerr::backend(&self.location, format!("{op}: reader task failed: {e}")))?
    }

    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path, self.busy_timeout),
        }
    }

    fn put(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }
}

fn in_snapshot<T>(
    conn: &Connection,
    location: &str,
    op: &str,
    f: impl FnOnce(&Connection, &str) -> Result<T>,
) -> Result<T> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
        .map_err(|e| sqlerr::map(location, op, e))?;
    let result = f(&tx, location)?;
    // Commit (not drop) so a failure to end the snapshot is reported instead of leaving it open.
    tx.commit().map_err(|e| sqlerr::map(location, op, e))?;
    Ok(result)
}

/// Reads the current, compacted and purged revisions.
pub(crate) fn revisions(conn: &Connection, location: &str) -> Result<Revisions> {
    schema::revisions(conn).map_err(|e| sqlerr::map(location, "read revisions", e))
}

/// One live key's row. A subquery, not a join: SQLite 3.54 plans a join against the bound key and so
/// re-prepares a cached join statement on every execution (the writer spent ~5% of its CPU re-parsing).
pub(crate) const GET_SQL: &str =
    "SELECT id, create_revision, value FROM log WHERE id = (SELECT id FROM current WHERE name = ?1)";

/// Reads one live key.
pub(crate) fn get(conn: &Connection, location: &str, key: &str) -> Result<Option<KeyValue>> {
    let map = |e| sqlerr::map(location, &format!("get {key:?}"), e);
    let mut stmt = conn.prepare_cached(GET_SQL).map_err(map)?;
    stmt.query_row([key], |r| {
        Ok(KeyValue { key: key.to_owned(), mod_revision: r.get(0)?, create_revision: r.get(1)?, value: r.get(2)? })
    })
    .optional()
    .map_err(map)
}

/// Lists a page of live keys under `prefix`, at the current revision or at `opts.revision`.
pub(crate) fn list(conn: &Connection, location: &str, prefix: &str, opts: &ListOptions) -> Result<ListResult> {
    let revs = revisions(conn, location)?;
    let at = opts.revision.filter(|r| *r > 0).unwrap_or(revs.current);
    if at < revs.compacted {
        return Err(Error::Expired { requested: at, compacted: revs.compacted });
    }
    if at > revs.current {
        return Err(Error::FutureRevision { requested: at, current: revs.current });
    }
    let start = opts.start.as_deref().filter(|s| *s > prefix).unwrap_or(prefix);
    let end = prefix_end(prefix);
    let limit = opts.limit.filter(|l| *l > 0);
    let map = |e| sqlerr::map(location, &format!("list {prefix:?} at revision {at}"), e);
    let (items, more) = if at == revs.current {
        list_current(conn, start, &end, limit).map_err(map)?
    } else {
        list_at(conn, start, &end, at, limit).map_err(map)?
    };
    Ok(ListResult { items, revision: at, more })
}

/// The live keys from the `current` index: one range scan of at most `limit + 1` rows.
fn list_current(
    conn: &Connection,
    start: &str,
    end: &str,
    limit: Option<usize>,
) -> rusqlite::Result<(Vec<KeyValue>, bool)> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.name, l.id, l.create_revision, l.value FROM current c JOIN log l ON l.id = c.id
         WHERE c.name >= ?1 AND c.name < ?2 ORDER BY c.name LIMIT ?3",
    )?;
    // One more than asked tells whether another page follows; -1 is SQLite's "no limit".
    let sql_limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX - 1) + 1);
    let rows = stmt.query_map(rusqlite::params![start, end, sql_limit], |r| {
        Ok(KeyValue { key: r.get(0)?, mod_revision: r.get(1)?, create_revision: r.get(2)?, value: r.get(3)? })
    })?;
    let mut items = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let more = limit.is_some_and(|l| items.len() > l);
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok((items, more))
}

/// The keys as they were at `at`, from the log. The grouping query walks the `(name, id)` index in
/// name order and is stepped only until the page is full, so a page costs its keys' retained versions,
/// not the whole range.
fn list_at(
    conn: &Connection,
    start: &str,
    end: &str,
    at: Revision,
    limit: Option<usize>,
) -> rusqlite::Result<(Vec<KeyValue>, bool)> {
    let mut names = conn.prepare_cached(
        "SELECT name, MAX(id) FROM log WHERE name >= ?1 AND name < ?2 AND id <= ?3 GROUP BY name ORDER BY name",
    )?;
    let mut row_of = conn.prepare_cached("SELECT deleted, create_revision, value FROM log WHERE id = ?1")?;
    let mut rows = names.query(rusqlite::params![start, end, at])?;
    let mut items = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next()? {
        let (key, id): (String, Revision) = (row.get(0)?, row.get(1)?);
        let (deleted, create_revision, value): (bool, Revision, Vec<u8>) =
            row_of.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if deleted {
            continue;
        }
        if limit.is_some_and(|l| items.len() == l) {
            more = true;
            break;
        }
        items.push(KeyValue { key, value, create_revision, mod_revision: id });
    }
    Ok((items, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).expect("query");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
    }

    /// The list queries must be index walks that stop early, never a sort of the whole range.
    #[test]
    fn list_queries_walk_indexes_without_sorting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = schema::open_writer(&dir.path().join("s.db"), Duration::from_secs(1)).expect("open");
        let current = plan(
            &conn,
            "SELECT c.name, l.id, l.create_revision, l.value FROM current c JOIN log l ON l.id = c.id
             WHERE c.name >= 'a' AND c.name < 'b' ORDER BY c.name LIMIT 10",
        );
        assert!(!current.contains("TEMP B-TREE") && current.contains("PRIMARY KEY"), "{current}");
        let at = plan(
            &conn,
            "SELECT name, MAX(id) FROM log WHERE name >= 'a' AND name < 'b' AND id <= 5 GROUP BY name ORDER BY name",
        );
        assert!(!at.contains("TEMP B-TREE") && at.contains("log_name_id"), "{at}");
    }
}
