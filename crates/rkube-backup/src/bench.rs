//! `rkube bench backup`: how long `rkube backup` and `rkube restore` take for a store of N objects (10k by default)
//! on the embedded store and on etcd, and `rkube migrate --to-etcd` for the same store.
//!
//! The store is filled straight through the store API (not the HTTP API): ConfigMaps of about 1 KiB of JSON as
//! the API server stores them, created by 64 concurrent writers into SQLite (group commit, as a server's writes)
//! and in transactions of 64 keys into etcd.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rkube_store::Store;

use crate::{Backend, BackupOptions, MigrateOptions, RestoreOptions, StoreSpec};

/// Flags of `rkube bench backup`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Objects in the store backed up.
    #[arg(long, default_value_t = 10_000)]
    pub objects: usize,
    /// The etcd binary for the etcd runs.
    #[arg(long, default_value = "/usr/bin/etcd")]
    pub etcd_binary: PathBuf,
}

const PREFIX: &str = "/registry";

fn configmap(i: usize) -> (String, Vec<u8>) {
    let name = format!("bench-{i:06}");
    let value = serde_json::json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "bench", "shard": format!("{}", i % 16)},
        },
        "data": {"payload": "x".repeat(800)},
    });
    (format!("{PREFIX}/configmaps/bench/{name}"), value.to_string().into_bytes())
}

struct Figures {
    store: &'static str,
    fill: Duration,
    backup: Duration,
    bytes: u64,
    restore: Duration,
}

/// Runs the measures and renders the BENCHMARKS.md section.
pub async fn run(args: &BenchArgs) -> anyhow::Result<String> {
    let n = args.objects;
    let mut rows = Vec::new();

    // Embedded store: filled while open (as a running server's), backed up while still open.
    let src = tempfile::tempdir()?;
    make_pki(src.path())?;
    let db = crate::datadir::store_file(src.path());
    let sqlite = Arc::new(rkube_store_sqlite::SqliteStore::open(&db, Default::default())?);
    let t = Instant::now();
    fill_concurrently(sqlite.clone(), n).await?;
    let fill = t.elapsed();
    let spec = StoreSpec { backend: Backend::Sqlite(db.clone()), prefix: PREFIX.into() };
    let archive = src.path().join("backup.tar");
    let b = crate::backup(&BackupOptions {
        data_dir: src.path().into(),
        store: spec,
        output: archive.clone(),
        force: false,
        quiet: true,
    })
    .await?;
    anyhow::ensure!(b.objects as usize >= n, "the backup holds {} objects, fewer than the {n} written", b.objects);
    drop(sqlite);
    let dst = tempfile::tempdir()?;
    let r = crate::restore(&RestoreOptions {
        input: archive.clone(),
        data_dir: dst.path().into(),
        store: StoreSpec { backend: Backend::Sqlite(crate::datadir::store_file(dst.path())), prefix: PREFIX.into() },
        force: false,
        quiet: true,
    })
    .await?;
    rows.push(Figures { store: "embedded (SQLite)", fill, backup: b.elapsed, bytes: b.bytes, restore: r.elapsed });

    // etcd: one local member; the restore goes to a second prefix of the same etcd.
    let options = rkube_store_etcd::LocalEtcdOptions { binary: args.etcd_binary.clone(), ..Default::default() };
    let etcd_proc = rkube_store_etcd::LocalEtcd::start(options).await.context("starting etcd")?;
    let config = rkube_store_etcd::EtcdConfig::new(vec![etcd_proc.endpoint()]);
    let etcd = rkube_store_etcd::EtcdStore::connect(config.clone()).await?;
    let t = Instant::now();
    let items: Vec<_> = (0..n).map(configmap).collect();
    etcd.create_many(&items).await?;
    let fill = t.elapsed();
    let edir = tempfile::tempdir()?;
    make_pki(edir.path())?;
    let earchive = edir.path().join("backup.tar");
    let b = crate::backup(&BackupOptions {
        data_dir: edir.path().into(),
        store: StoreSpec { backend: Backend::Etcd(config.clone()), prefix: PREFIX.into() },
        output: earchive.clone(),
        force: false,
        quiet: true,
    })
    .await?;
    let edst = tempfile::tempdir()?;
    let r = crate::restore(&RestoreOptions {
        input: earchive,
        data_dir: edst.path().into(),
        store: StoreSpec { backend: Backend::Etcd(config.clone()), prefix: "/restored".into() },
        force: false,
        quiet: true,
    })
    .await?;
    rows.push(Figures { store: "etcd", fill, backup: b.elapsed, bytes: b.bytes, restore: r.elapsed });

    drop(etcd_proc);

    // Migration of the restored embedded store into a second, empty etcd.
    let options = rkube_store_etcd::LocalEtcdOptions { binary: args.etcd_binary.clone(), ..Default::default() };
    let etcd_proc = rkube_store_etcd::LocalEtcd::start(options).await.context("starting etcd")?;
    let config = rkube_store_etcd::EtcdConfig::new(vec![etcd_proc.endpoint()]);
    let m = crate::migrate(&MigrateOptions {
        data_dir: dst.path().into(),
        target: StoreSpec { backend: Backend::Etcd(config), prefix: PREFIX.into() },
        quiet: true,
    })
    .await?;
    anyhow::ensure!(m.objects as usize == n, "migrated {} objects, not {n}", m.objects);
    render(n, &rows, m.objects, m.elapsed)
}

fn make_pki(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let cfg = rkube_pki::PkiConfig::new(crate::datadir::tls_dir(data_dir), "bench-node");
    rkube_pki::Pki::load_or_create(&cfg).context("creating a PKI for the benchmark")?;
    Ok(())
}

async fn fill_concurrently(store: Arc<dyn Store>, n: usize) -> anyhow::Result<()> {
    const WRITERS: usize = 64;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(WRITERS) {
                let (key, value) = configmap(i);
                store.create(&key, value).await?;
            }
            Ok::<_, rkube_store::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn render(n: usize, rows: &[Figures], migrated: u64, migrate: Duration) -> anyhow::Result<String> {
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mut t = String::from("## Backup and restore\n\n");
    writeln!(
        t,
        "`rkube backup` and `rkube restore` of a store holding {n} ConfigMaps (about 1 KiB of JSON each) plus the \
         PKI. The store was filled straight through the store API, not the HTTP API: 64 concurrent writers into \
         the embedded store (open during the backup, as a running server's), transactions of 64 keys into etcd \
         (one local member on this machine, started by the benchmark). Backup: the snapshot read and the archive written (uncompressed tar, fsynced). \
         Restore: the archive checked (checksums) and the objects written into a fresh data directory \
         (SQLite, keeping revisions) or an empty prefix of the same etcd.\n"
    )?;
    writeln!(t, "| store | filling | archive | backup | restore |")?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    for r in rows {
        writeln!(
            t,
            "| {} | {} | {:.1} MiB | {} | {} |",
            r.store,
            s(r.fill),
            r.bytes as f64 / (1024.0 * 1024.0),
            s(r.backup),
            s(r.restore)
        )?;
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    writeln!(
        t,
        "\n`rkube migrate --to-etcd` of the restored embedded store ({migrated} objects) into a second, empty \
         local etcd, count verified: {}. rkube {profile} build; this machine: {cores} cores, 1-minute load average {load} at \
         the end (other programs shared the machine).",
        s(migrate)
    )?;
    Ok(t)
}
