//! Choosing and opening the store from the command line: the embedded SQLite file by default,
//! etcd when `--etcd-endpoints` is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rkube_store::Store;

/// Store flags shared by `server` and the benchmarks.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "(db)")]
pub(crate) struct StoreArgs {
    /// etcd endpoints (comma separated, e.g. https://10.0.0.1:2379); without them the embedded SQLite store is used.
    #[arg(long, env = "RKUBE_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub(crate) etcd_endpoints: Vec<String>,
    /// CA file that signs the etcd servers' certificates.
    #[arg(long, env = "RKUBE_ETCD_CAFILE")]
    pub(crate) etcd_cafile: Option<PathBuf>,
    /// Client certificate presented to etcd.
    #[arg(long, env = "RKUBE_ETCD_CERTFILE")]
    pub(crate) etcd_certfile: Option<PathBuf>,
    /// Key of the client certificate presented to etcd.
    #[arg(long, env = "RKUBE_ETCD_KEYFILE")]
    pub(crate) etcd_keyfile: Option<PathBuf>,
    /// Prefix of every key the API server writes, as kube-apiserver's --etcd-prefix.
    #[arg(long, env = "RKUBE_ETCD_PREFIX", default_value = "/registry")]
    pub(crate) etcd_prefix: String,
    /// How often old revisions are compacted, e.g. 5m, 300s (as kube-apiserver's --etcd-compaction-interval).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) etcd_compaction_interval: Duration,
    /// Revisions the embedded store keeps behind the current one when it compacts (like kine).
    #[arg(long, default_value_t = 1000)]
    pub(crate) compaction_keep_revisions: i64,
}

/// Where the objects live, validated.
#[derive(Debug, Clone)]
pub(crate) enum StoreConfig {
    /// The embedded store: one SQLite file.
    Sqlite { path: PathBuf, compaction_interval: Duration, keep: i64, prefix: String },
    /// An external etcd cluster.
    Etcd { config: rkube_store_etcd::EtcdConfig, compaction_interval: Duration, prefix: String },
}

impl StoreArgs {
    /// Validates the flags, reporting every problem at once.
    pub(crate) fn validate(&self, data_dir: &Path, problems: &mut Vec<String>) -> Option<StoreConfig> {
        if self.compaction_keep_revisions < 1 {
            problems.push(format!("--compaction-keep-revisions {} must be at least 1", self.compaction_keep_revisions));
        }
        if self.etcd_endpoints.is_empty() {
            for (flag, given) in [
                ("--etcd-cafile", &self.etcd_cafile),
                ("--etcd-certfile", &self.etcd_certfile),
                ("--etcd-keyfile", &self.etcd_keyfile),
            ] {
                if given.is_some() {
                    problems.push(format!("{flag} is set but --etcd-endpoints is not: give the etcd endpoints, or drop {flag} to use the embedded store"));
                }
            }
            return Some(StoreConfig::Sqlite {
                path: data_dir.join("server").join("db").join("state.db"),
                compaction_interval: self.etcd_compaction_interval,
                keep: self.compaction_keep_revisions,
                prefix: self.etcd_prefix.clone(),
            });
        }
        let before = problems.len();
        for ep in &self.etcd_endpoints {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                problems.push(format!("--etcd-endpoints: {ep:?} is not a URL; write it as https://HOST:2379 (or http:// for an etcd without TLS)"));
            }
        }
        for (flag, file) in [
            ("--etcd-cafile", &self.etcd_cafile),
            ("--etcd-certfile", &self.etcd_certfile),
            ("--etcd-keyfile", &self.etcd_keyfile),
        ] {
            if let Some(file) = file
                && !file.is_file()
            {
                problems.push(format!("{flag}: {} does not exist or is not a file", file.display()));
            }
        }
        if self.etcd_certfile.is_some() != self.etcd_keyfile.is_some() {
            problems.push("--etcd-certfile and --etcd-keyfile go together: give both or neither".to_owned());
        }
        if !self.etcd_prefix.starts_with('/') {
            problems.push(format!("--etcd-prefix {:?} must start with '/', e.g. /registry", self.etcd_prefix));
        }
        if problems.len() > before {
            return None;
        }
        Some(StoreConfig::Etcd {
            config: rkube_store_etcd::EtcdConfig {
                endpoints: self.etcd_endpoints.clone(),
                ca_file: self.etcd_cafile.clone(),
                cert_file: self.etcd_certfile.clone(),
                key_file: self.etcd_keyfile.clone(),
                connect_timeout: Duration::from_secs(5),
            },
            compaction_interval: self.etcd_compaction_interval,
            prefix: self.etcd_prefix.clone(),
        })
    }
}

impl StoreConfig {
    /// The key prefix objects are stored under.
    pub(crate) fn key_prefix(&self) -> &str {
        match self {
            StoreConfig::Sqlite { prefix, .. } | StoreConfig::Etcd { prefix, .. } => prefix,
        }
    }
}

/// Opens the configured store. SQLite compacts itself; for etcd the caller runs [`rkube_store::compactor`].
pub(crate) async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Sqlite { path, compaction_interval, keep, .. } => {
            let options = rkube_store_sqlite::SqliteOptions {
                compaction_interval: *compaction_interval,
                compaction_keep: *keep,
                ..Default::default()
            };
            let store = rkube_store_sqlite::SqliteStore::open(path, options)
                .with_context(|| format!("opening the embedded store {}", path.display()))?;
            Arc::new(store)
        }
        StoreConfig::Etcd { config, .. } => {
            let store = rkube_store_etcd::EtcdStore::connect(config.clone())
                .await
                .with_context(|| format!("connecting to etcd at {}", config.endpoints.join(",")))?;
            Arc::new(store)
        }
    })
}
