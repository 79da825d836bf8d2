//! The on-disk layout and opening the file: checks that it is an rkube store (or empty) before changing anything.
//!
//! Layout, kine-style:
//! - `log`: append-only, one row per change; its `INTEGER PRIMARY KEY AUTOINCREMENT` id IS the revision.
//!   Tombstones (`deleted = 1`) carry no value: a watch event's previous value is the row `prev_revision`
//!   points at, which compaction never removes while a retained row refers to it (so no `old_value` copy).
//! - `current`: the live keys and the log id of their latest row, so current reads and pages are index range scans.
//! - `meta`: the magic, the schema version, the compacted revision and the highest revision a purge
//!   (physical deletion) has started at.
//!
//! The current revision is `sqlite_sequence.seq` for `log`, which survives compaction deleting rows.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rkube_store::{Error, Result, Revision};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::sqlerr;

/// `PRAGMA application_id` of an rkube store: "rkub" in ASCII, so `file(1)`-like tools can tell it apart.
pub(crate) const APPLICATION_ID: i32 = 0x726b_7562;
/// The layout version this code reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i32 = 1;
/// The `meta` row `magic` holds this, a second check beside the application id.
const MAGIC: &str = "rkube-store";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS current (name TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
";

const TABLES: [&str; 3] = ["meta", "log", "current"];

/// What a file holds, judged before anything is written to it.
pub(crate) enum Found {
    /// No tables at all: a new (or zero-length) file to initialise.
    Empty,
    /// An rkube store this code can use.
    Store,
}

/// Opens (creating if needed) the database at `path` for writing, in WAL mode with full fsync.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let location = path.display().to_string();
    precheck(path, &location)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlerr::map(&location, "open", e))?;
    conn.busy_timeout(busy_timeout).map_err(|e| sqlerr::map(&location, "set busy timeout", e))?;
    // Only reads until the file is known to be ours, so a foreign or damaged file is left as it was.
    let found = inspect(&conn, &location)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| sqlerr::map(&location, "switch to WAL journal mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable {
            location,
            message: format!(
                "the filesystem does not support WAL mode (journal mode stayed {mode:?}); put the data directory on a local filesystem"
            ),
            source: None,
        });
    }
    // FULL: an acknowledged commit is fsynced, so it survives a crash of the process or the machine.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864;")
        .map_err(|e| sqlerr::map(&location, "set pragmas", e))?;
    if matches!(found, Found::Empty) {
        initialise(&conn, &location)?;
    }
    Ok(conn)
}

/// Opens a connection for reads only (`query_only`), for the read pool and watches.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let location = path.display().to_string();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlerr::map(&location, "open a reader", e))?;
    conn.busy_timeout(busy_timeout).map_err(|e| sqlerr::map(&location, "set busy timeout", e))?;
    // A read-write handle limited by query_only rather than SQLITE_OPEN_READONLY: a read-only
    // handle cannot rebuild the WAL index when it is the first to open the file after a crash.
    conn.execute_batch("PRAGMA query_only = ON;").map_err(|e| sqlerr::map(&location, "set query_only", e))?;
    Ok(conn)
}

/// Checks the path and the file header with plain file IO, before SQLite touches anything.
fn precheck(path: &Path, location: &str) -> Result<()> {
    let unavailable = |message: String, source: Option<std::io::Error>| Error::Unavailable {
        location: location.to_owned(),
        message,
        source: source.map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
    };
    if path.is_dir() {
        return Err(unavailable("the path is a directory; give the path of a database file inside it".into(), None));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            unavailable(
                format!(
                    "cannot create its directory {}: {e}; make sure the path is a directory writable by this process",
                    parent.display()
                ),
                Some(e),
            )
        })?;
    }
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unavailable(format!("cannot read the file: {e}; check its permissions"), Some(e))),
    };
    let mut header = Vec::with_capacity(100);
    (&mut file)
        .take(100)
        .read_to_end(&mut header)
        .map_err(|e| unavailable(format!("cannot read the file: {e}; check the disk"), Some(e)))?;
    if header.is_empty() {
        return Ok(());
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(Error::Corrupt {
            location: location.to_owned(),
            message:
                "the file is not an SQLite database; restore it from a backup, or move it aside to start an empty store"
                    .into(),
            source: None,
        });
    }
    Ok(())
}

/// Reads what the file holds and rejects anything that is not an (empty or current) rkube store.
pub(crate) fn inspect(conn: &Connection, location: &str) -> Result<Found> {
    let map = |e| sqlerr::map(location, "read the database header", e);
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(map)?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(map)?;
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(map)?;
    let tables =
        stmt.query_map([], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
    let tables = tables.map_err(map)?;
    let corrupt = |message: String| Error::Corrupt { location: location.to_owned(), message, source: None };
    if app_id == 0 && tables.is_empty() {
        return Ok(Found::Empty);
    }
    if app_id != APPLICATION_ID {
        return Err(corrupt(format!(
            "the file is an SQLite database but not an rkube store (application_id {app_id:#x}, tables: {}); \
             it was left untouched: point rkube at another data directory, or move the file aside",
            tables.join(", ")
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(corrupt(format!(
            "the store has schema version {version}, newer than this rkube understands ({SCHEMA_VERSION}); run a newer rkube"
        )));
    }
    if let Some(missing) = TABLES.iter().find(|t| !tables.iter().any(|have| have == *t)) {
        return Err(corrupt(format!(
            "the rkube store lacks its {missing:?} table; restore it from a backup, or move it aside to start an empty store"
        )));
    }
    let magic: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'magic'", [], |r| r.get(0)).optional().map_err(map)?;
    if magic.as_deref() != Some(MAGIC) {
        return Err(corrupt(format!(
            "the meta table holds magic {magic:?}, not {MAGIC:?}; restore the store from a backup"
        )));
    }
    Ok(Found::Store)
}

/// Creates the tables of a new store; safe against another process doing the same at once.
fn initialise(conn: &Connection, location: &str) -> Result<()> {
    let map = |e| sqlerr::map(location, "create the store's tables", e);
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(map)?;
    // Another process may have initialised the file between our inspection and taking the write lock.
    if let Found::Store = inspect(&tx, location)? {
        return Ok(());
    }
    tx.execute_batch(CREATE).map_err(map)?;
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"))
        .map_err(map)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('magic', ?1), ('schema_version', ?2), ('compacted', 0), ('purged', 0)",
        rusqlite::params![MAGIC, SCHEMA_VERSION],
    )
    .map_err(map)?;
    tx.commit().map_err(map)
}

/// The revisions a reader or the writer needs, read in one snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Revisions {
    /// The last revision written (0 for an empty store).
    pub(crate) current: Revision,
    /// Reads and new watches at older revisions fail with `Expired`.
    pub(crate) compacted: Revision,
    /// Rows at or below this may already be physically gone: a watch positioned below it cannot go on.
    pub(crate) purged: Revision,
}

/// Reads [`Revisions`] (inside the caller's transaction, if any).
pub(crate) fn revisions(conn: &Connection) -> rusqlite::Result<Revisions> {
    conn.prepare_cached(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0),
                (SELECT value FROM meta WHERE key = 'compacted'),
                (SELECT value FROM meta WHERE key = 'purged')",
    )?
    .query_row([], |r| Ok(Revisions { current: r.get(0)?, compacted: r.get(1)?, purged: r.get(2)? }))
}

#[cfg(test)]
mod tests;
