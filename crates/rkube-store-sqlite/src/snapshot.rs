//! Whole-store snapshots for `rkube backup`, `restore` and `migrate`: reading every live key at one revision from a
//! file a running server may be writing, and writing a new store file whose keys keep their revisions.
//!
//! Both work on the file directly rather than through a [`crate::SqliteStore`]: an export must not start a writer
//! thread (or compaction) beside the server's, and an import writes rows with chosen revisions, which the
//! store's write path never does.

use std::path::Path;
use std::time::Duration;

use rkube_store::{Error, KeyValue, Result, Revision, prefix_end};
use rusqlite::TransactionBehavior;

use crate::schema::{self, Found};
use crate::sqlerr;

/// How long an export or import waits for another process's lock (the running server's writer commits in
/// milliseconds; its compaction works in small chunks).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What an export read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportInfo {
    /// The revision every exported key was read at: the store's current revision when the export began.
    pub revision: Revision,
    /// How many keys were exported.
    pub count: u64,
}

/// Reads every live key under `prefix` (sorted by key) at one revision and hands each to `each`, from one read
/// transaction: a consistent snapshot even while a server commits to the file (WAL readers see the state at their
/// transaction's start). Nothing is written to the file.
///
/// Fails with [`Error::Unavailable`] if there is no store file at `path`, [`Error::Corrupt`] if it is not an
/// rkube store, and with whatever `each` returns.
pub fn export(path: &Path, prefix: &str, mut each: impl FnMut(KeyValue) -> Result<()>) -> Result<ExportInfo> {
    let location = path.display().to_string();
    if !path.is_file() {
        return Err(Error::Unavailable {
            location,
            message: "there is no embedded store here; check --data-dir (the store is <data-dir>/server/db/state.db)"
                .into(),
            source: None,
        });
    }
    let conn = schema::open_reader(path, BUSY_TIMEOUT)?;
    let map = |op: &str| {
        let location = location.clone();
        let op = op.to_owned();
        move |e| sqlerr::map(&location, &op, e)
    };
    let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred).map_err(map("begin"))?;
    if let Found::Empty = schema::inspect(&tx, &location)? {
        return Ok(ExportInfo { revision: 0, count: 0 });
    }
    let revision = schema::revisions(&tx).map_err(map("read revisions"))?.current;
    let mut stmt = tx
        .prepare(
            "SELECT c.name, l.id, l.create_revision, l.value FROM current c JOIN log l ON l.id = c.id
             WHERE c.name >= ?1 AND c.name < ?2 ORDER BY c.name",
        )
        .map_err(map("prepare the export"))?;
    let mut rows = stmt.query(rusqlite::params![prefix, prefix_end(prefix)]).map_err(map("read keys"))?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(map("read keys"))? {
        let kv = KeyValue {
            key: row.get(0).map_err(map("read a key"))?,
            mod_revision: row.get(1).map_err(map("read a key"))?,
            create_revision: row.get(2).map_err(map("read a key"))?,
            value: row.get(3).map_err(map("read a key"))?,
        };
        each(kv)?;
        count += 1;
    }
    Ok(ExportInfo { revision, count })
}

/// Writes a new store file at `path` holding `items`, each keeping its `create_revision` and `mod_revision`,
/// with the store's current revision `revision` and history compacted up to it (watches and reads at older
/// revisions get `Expired`, so clients relist). Every `mod_revision` must be unique, positive and at most
/// `revision`.
///
/// Refuses (with [`Error::Unavailable`]) if `path` exists. If anything fails the file is left incomplete:
/// callers write into a scratch directory and move it into place on success.
pub fn import(path: &Path, revision: Revision, items: impl IntoIterator<Item = Result<KeyValue>>) -> Result<u64> {
    let location = path.display().to_string();
    if path.exists() {
        return Err(Error::Unavailable {
            location,
            message: "a file is already there; an import only writes a new store".into(),
            source: None,
        });
    }
    let conn = schema::open_writer(path, BUSY_TIMEOUT)?;
    let map = |op: &'static str| {
        let location = location.clone();
        move |e| sqlerr::map(&location, op, e)
    };
    let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(map("begin"))?;
    let mut count = 0u64;
    {
        let mut log = tx
            .prepare(
                "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value)
                 VALUES (?1, ?2, ?3, 0, ?4, 0, ?5)",
            )
            .map_err(map("prepare the import"))?;
        let mut current =
            tx.prepare("INSERT INTO current (name, id) VALUES (?1, ?2)").map_err(map("prepare the import"))?;
        for kv in items {
            let kv = kv?;
            if kv.mod_revision < 1 || kv.mod_revision > revision {
                return Err(Error::Backend {
                    location,
                    message: format!(
                        "key {:?} has revision {}, outside 1..={revision}; the snapshot is inconsistent",
                        kv.key, kv.mod_revision
                    ),
                    source: None,
                });
            }
            let created = kv.create_revision == kv.mod_revision;
            log.execute(rusqlite::params![kv.mod_revision, kv.key, created, kv.create_revision, kv.value])
                .map_err(map("write a key (are revisions unique?)"))?;
            current.execute(rusqlite::params![kv.key, kv.mod_revision]).map_err(map("write a key"))?;
            count += 1;
        }
    }
    // The current revision is sqlite_sequence's; it may lie above every kept key (their later history is gone).
    let updated = tx
        .execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'log'", [revision])
        .map_err(map("set the revision"))?;
    if updated == 0 && revision > 0 {
        tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('log', ?1)", [revision])
            .map_err(map("set the revision"))?;
    }
    tx.execute("UPDATE meta SET value = ?1 WHERE key IN ('compacted', 'purged')", [revision])
        .map_err(map("set the compacted revision"))?;
    tx.commit().map_err(map("commit the import"))?;
    Ok(count)
}

#[cfg(test)]
mod tests;
