//! The etcd v3 backend of [`rkube_store::Store`], and [`LocalEtcd`], which runs an etcd on this host for tests,
//! benchmarks and single-host clusters.
//!
//! Keys and values are stored as given: `etcdctl get --prefix /registry/` shows the objects' JSON, as with upstream.
//! Revisions are etcd's own (`mod_revision` is the object's `resourceVersion`); compare-and-swap is an etcd
//! transaction on `mod_revision`; watches resume by themselves across etcd restarts. How the compacted revision is
//! found without a bookkeeping key is told in `compaction.rs`.

mod bulk;
mod compaction;
mod config;
mod conn;
mod errors;
mod kv;
pub mod local;
mod watch;

use async_trait::async_trait;
use rkube_store::{KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};

pub use config::EtcdConfig;
pub use local::{LocalEtcd, LocalEtcdError, LocalEtcdOptions, LocalEtcdTls};

use conn::Conn;

/// A [`Store`] in an etcd v3 cluster. Cheap to clone: clones share the connections.
///
/// Requests go to the member that answered last and fail over to the others when it cannot be reached
/// (writes only when they were not sent; see `conn.rs`).
#[derive(Clone)]
pub struct EtcdStore {
    conn: Conn,
}

impl EtcdStore {
    /// Connects to the cluster: checks every endpoint with a request and fails with
    /// [`rkube_store::Error::Unavailable`] (naming each endpoint, what went wrong and what to do) if none answers
    /// within `config.connect_timeout`. Endpoints that are down while others answer are logged and retried later.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore> {
        Ok(EtcdStore { conn: Conn::connect(&config).await? })
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.conn.get(key).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        self.conn.list(prefix, opts).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.conn.create(key, value).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        self.conn.update(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.conn.delete(key, expected).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.conn.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.conn.compacted_revision().await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::watch(&self.conn, prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.conn.compact(revision).await
    }

    fn describe(&self) -> String {
        format!("etcd at {}", self.conn.ctx.location)
    }
}
