//! `rkube backup`, `rkube restore` and `rkube migrate --to-etcd`: a consistent snapshot of the store (the embedded
//! SQLite file or etcd) and the cluster PKI in one archive, brought back into a fresh data directory or etcd prefix.
//!
//! The snapshot is logical (every live key under the API prefix at one revision, with its value), so an archive of
//! either backend restores into either backend, and migration is an export from SQLite imported into etcd.
//! Restoring into SQLite keeps every object's resourceVersion (the file's revisions are written as they were);
//! restoring into etcd cannot choose revisions, so objects get new resourceVersions there, as with upstream's etcd
//! restores. Modules: `manifest` and `records` (the archive's parts), `archive` (the tar file), `source` (reading a
//! snapshot), `target` (writing one), `datadir` (the data directory's layout and checks), `progress`, `backup`, `restore`,
//! `migrate` (the three commands) and `ops` (what they share), `bench` (`rkube bench backup`).

mod archive;
mod backup;
pub mod bench;
mod datadir;
mod error;
mod manifest;
mod migrate;
mod ops;
mod progress;
mod records;
mod restore;
mod source;
mod target;

use std::path::PathBuf;

pub use backup::{BackupOptions, backup};
pub use error::{Error, Result};
pub use manifest::Manifest;
pub use migrate::{MigrateOptions, migrate};
pub use ops::Summary;
pub use restore::{RestoreOptions, restore};

/// Where the objects live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded store: this SQLite file.
    Sqlite(PathBuf),
    /// An etcd cluster.
    Etcd(rkube_store_etcd::EtcdConfig),
}

/// A store and the prefix the API server keeps its objects under (`--etcd-prefix`, `/registry` by default).
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// The backend.
    pub backend: Backend,
    /// The key prefix, without a trailing slash.
    pub prefix: String,
}

impl StoreSpec {
    /// The range every object key lies in: the prefix with a trailing slash, so `/registry` never takes
    /// `/registry-other/...`.
    pub(crate) fn range(&self) -> String {
        format!("{}/", self.prefix.trim_end_matches('/'))
    }

    /// `sqlite` or `etcd`, as the manifest names the kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Etcd(_) => "etcd",
        }
    }
}
