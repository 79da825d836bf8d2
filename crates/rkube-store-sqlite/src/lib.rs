//! The embedded SQLite backend of the rkube [`Store`]: a kine-style append-only log in one file,
//! written by one group-committing thread and read through a pool of query-only connections.
//!
//! Modules: `schema` (layout, opening and checking the file), `writer` (the writer thread),
//! `compactor` (compaction, run by the writer), `read` (read pool, get and list), `watch` (watch tasks),
//! `snapshot` (whole-store export and import for backup, restore and migration).
//! Automatic compaction runs on the writer thread's timer, so there is no separate thread to stop:
//! dropping the store closes the writer's queue and joins it.

mod compactor;
mod read;
mod recent;
mod schema;
pub mod snapshot;
mod sqlerr;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rkube_store::{Error, KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream, check_value_size};

use crate::read::ReadPool;
use crate::recent::Recent;
use crate::watch::Registry;
use crate::writer::{Op, Outcome, Writer, WriterConfig};

/// How a [`SqliteStore`] runs; [`SqliteOptions::default`] suits a server.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How often history is compacted automatically; zero turns automatic compaction off. Default 5 minutes.
    pub compaction_interval: Duration,
    /// How many revisions automatic compaction keeps readable (like kine). Default 1000.
    pub compaction_keep: Revision,
    /// How long a compaction waits for this process's lagging watches before deleting history they
    /// have not read yet (they then end with `Expired`). Default 10 seconds.
    pub compaction_watch_grace: Duration,
    /// How often a watch looks for writes by another process sharing the file. Default 1 second.
    pub watch_poll_interval: Duration,
    /// How many reads may run at once, each on its own connection. Default 4.
    pub read_connections: usize,
    /// How long a statement waits for another process's lock before failing. Default 10 seconds.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            compaction_interval: Duration::from_secs(300),
            compaction_keep: 1000,
            compaction_watch_grace: Duration::from_secs(10),
            watch_poll_interval: Duration::from_secs(1),
            read_connections: 4,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`Store`] in one SQLite file. Dropping it stops its writer thread (after the transaction in
/// progress) and its compaction, and ends its watches.
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    pool: Arc<ReadPool>,
    watchers: Arc<Registry>,
    recent: Arc<Recent>,
    notify: tokio::sync::watch::Receiver<Revision>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (and its directory) if missing, and starts its
    /// writer thread, which also runs automatic compaction.
    ///
    /// Fails with [`Error::Corrupt`] if the file is damaged or not an rkube store (it is then left
    /// untouched), and with [`Error::Unavailable`] if the location cannot be written.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        let conn = schema::open_writer(path, options.busy_timeout)?;
        let current =
            schema::revisions(&conn).map_err(|e| sqlerr::map(&path.display().to_string(), "read revisions", e))?;
        let (notify_tx, notify) = tokio::sync::watch::channel(current.current);
        let watchers = Arc::new(Registry::default());
        let recent = Arc::new(Recent::default());
        let config = WriterConfig {
            location: path.display().to_string(),
            compaction_interval: options.compaction_interval,
            compaction_keep: options.compaction_keep,
            watch_grace: options.compaction_watch_grace,
            recent: recent.clone(),
        };
        let writer = Writer::spawn(conn, config, notify_tx, watchers.clone())?;
        let pool = Arc::new(ReadPool::new(path.to_owned(), options.read_connections, options.busy_timeout));
        tracing::debug!(path = %path.display(), revision = current.current, "opened SQLite store");
        Ok(SqliteStore { path: path.to_owned(), options, pool, watchers, recent, notify, writer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unexpected(&self, op: &str) -> Error {
        sqlerr::backend(self.pool.location(), format!("{op}: the writer returned an unexpected outcome"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.pool.run("get", move |conn, location| read::get(conn, location, &key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        self.pool.run("list", move |conn, location| read::list(conn, location, &prefix, &opts)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        match self.writer.write(Op::Create { key: key.to_owned(), value }).await? {
            Outcome::Put(kv) => Ok(kv),
            Outcome::Deleted(..) => Err(self.unexpected("create")),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        match self.writer.write(Op::Update { key: key.to_owned(), value, expected }).await? {
            Outcome::Put(kv) => Ok(kv),
            Outcome::Deleted(..) => Err(self.unexpected("update")),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        match self.writer.write(Op::Delete { key: key.to_owned(), expected }).await? {
            Outcome::Deleted(kv, revision) => Ok((kv, revision)),
            Outcome::Put(_) => Err(self.unexpected("delete")),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.pool.run("read the current revision", read::revisions).await?.current)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.pool.run("read the compacted revision", read::revisions).await?.compacted)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let poll = self.options.watch_poll_interval;
        watch::start(self.pool.clone(), self.recent.clone(), &self.watchers, self.notify.clone(), prefix, after, poll)
            .await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.writer.compact(revision).await
    }

    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

#[cfg(test)]
mod tests;
