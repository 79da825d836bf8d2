//! The store benchmark: the same workload against the embedded SQLite store and a real etcd on this machine,
//! both with durable writes (SQLite `synchronous=FULL`, etcd's default fsync), reported side by side.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use rkube_store::Store;

use crate::stats::{ms, percentile, rate};

/// How much work each measure does.
#[derive(Debug, Clone)]
pub struct StoreBenchConfig {
    /// Creates (and gets) done by one client; the concurrent measures do four times as many.
    pub ops: usize,
    /// Concurrent clients for the concurrent measures.
    pub clients: usize,
    /// Writes timed for watch delivery latency.
    pub watch_ops: usize,
    /// The etcd binary to run (Debian's by default).
    pub etcd_binary: std::path::PathBuf,
}

impl Default for StoreBenchConfig {
    fn default() -> Self {
        StoreBenchConfig { ops: 2000, clients: 16, watch_ops: 500, etcd_binary: "/usr/bin/etcd".into() }
    }
}

/// One backend's figures.
#[derive(Debug, Clone, Default)]
struct Figures {
    creates_seq: f64,
    create_p50: Duration,
    create_p99: Duration,
    creates_conc: f64,
    gets_seq: f64,
    gets_conc: f64,
    watch_p50: Duration,
    watch_p99: Duration,
}

/// Runs the benchmark on both backends and returns the Markdown section. Progress goes to stderr.
pub async fn run(config: &StoreBenchConfig) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;

    eprintln!("[store bench] sqlite: opening {}", dir.path().join("state.db").display());
    let sqlite = rkube_store_sqlite::SqliteStore::open(&dir.path().join("state.db"), Default::default())
        .context("opening the SQLite store")?;
    let sqlite_figures = measure("sqlite", Arc::new(sqlite), config).await?;

    eprintln!("[store bench] etcd: starting {}", config.etcd_binary.display());
    let options = rkube_store_etcd::LocalEtcdOptions {
        binary: config.etcd_binary.clone(),
        data_dir: Some(dir.path().join("etcd")),
        ..Default::default()
    };
    let etcd = rkube_store_etcd::LocalEtcd::start(options).await.context("starting a local etcd")?;
    let etcd_store = rkube_store_etcd::EtcdStore::connect(rkube_store_etcd::EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        ..Default::default()
    })
    .await
    .context("connecting to the local etcd")?;
    let etcd_figures = measure("etcd", Arc::new(etcd_store), config).await?;
    drop(etcd);

    Ok(render(config, &sqlite_figures, &etcd_figures, &etcd_version(&config.etcd_binary)))
}

async fn measure(name: &str, store: Arc<dyn Store>, config: &StoreBenchConfig) -> anyhow::Result<Figures> {
    let mut f = Figures::default();

    eprintln!("[store bench] {name}: {} sequential creates", config.ops);
    let mut lat = Vec::with_capacity(config.ops);
    let start = Instant::now();
    for i in 0..config.ops {
        let t = Instant::now();
        store.create(&key("seq", i), value(i)).await?;
        lat.push(t.elapsed());
    }
    f.creates_seq = rate(config.ops, start.elapsed());
    f.create_p50 = percentile(&mut lat, 50.0);
    f.create_p99 = percentile(&mut lat, 99.0);

    let conc_ops = config.ops * 4;
    eprintln!("[store bench] {name}: {conc_ops} creates from {} clients", config.clients);
    let start = Instant::now();
    fan_out(
        &store,
        config.clients,
        conc_ops,
        |s, i| async move { s.create(&key("conc", i), value(i)).await.map(|_| ()) },
    )
    .await?;
    f.creates_conc = rate(conc_ops, start.elapsed());

    eprintln!("[store bench] {name}: {} sequential gets", config.ops);
    let start = Instant::now();
    for i in 0..config.ops {
        store.get(&key("seq", (i * 7919) % config.ops)).await?.context("a created key is missing")?;
    }
    f.gets_seq = rate(config.ops, start.elapsed());

    eprintln!("[store bench] {name}: {conc_ops} gets from {} clients", config.clients);
    let start = Instant::now();
    let missing = Arc::new(AtomicUsize::new(0));
    let miss = missing.clone();
    fan_out(&store, config.clients, conc_ops, move |s, i| {
        let miss = miss.clone();
        async move {
            if s.get(&key("conc", (i * 7919) % conc_ops)).await?.is_none() {
                miss.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    })
    .await?;
    anyhow::ensure!(missing.load(Ordering::Relaxed) == 0, "{name}: created keys were missing on read");
    f.gets_conc = rate(conc_ops, start.elapsed());

    eprintln!("[store bench] {name}: watch delivery latency over {} writes", config.watch_ops);
    let (p50, p99) = watch_latency(&store, config.watch_ops).await?;
    f.watch_p50 = p50;
    f.watch_p99 = p99;
    Ok(f)
}

/// Runs `total` operations spread over `clients` tasks, each taking the next index from a shared counter.
async fn fan_out<F, Fut>(store: &Arc<dyn Store>, clients: usize, total: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(Arc<dyn Store>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = rkube_store::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (store, next, op) = (store.clone(), next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, rkube_store::Error>(());
                }
                op(store.clone(), i).await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("a benchmark client panicked")??;
    }
    Ok(())
}

/// Time from the start of a write to the moment a watcher on its prefix receives it.
async fn watch_latency(store: &Arc<dyn Store>, n: usize) -> anyhow::Result<(Duration, Duration)> {
    let prefix = "/registry/configmaps/bench-watch/";
    let after = store.current_revision().await?;
    let mut watch = store.watch(prefix, after).await?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        store.create(&format!("{prefix}{i:08}"), value(i)).await?;
        let ev = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .context("no watch event within 30 s")?
            .context("the watch ended")??;
        anyhow::ensure!(ev.kv.key.ends_with(&format!("{i:08}")), "watch delivered {} out of order", ev.kv.key);
        lat.push(t.elapsed());
    }
    Ok((percentile(&mut lat, 50.0), percentile(&mut lat, 99.0)))
}

fn key(kind: &str, i: usize) -> String {
    format!("/registry/configmaps/bench-{kind}/cm-{i:08}")
}

/// A value the size of a small ConfigMap's JSON.
fn value(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:08}","namespace":"bench","uid":"{:032x}"}},"data":{{"key":"{}"}}}}"#,
        i,
        "v".repeat(256)
    )
    .into_bytes()
}

fn etcd_version(binary: &std::path::Path) -> String {
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "etcd (version unknown)".to_owned())
}

fn render(c: &StoreBenchConfig, s: &Figures, e: &Figures, etcd: &str) -> String {
    let ratio = |a: f64, b: f64| format!("{:.2}×", a / b.max(f64::EPSILON));
    let dratio = |a: Duration, b: Duration| format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON));
    let rows = [
        (
            "creates/s, 1 client".to_owned(),
            format!("{:.0}", s.creates_seq),
            format!("{:.0}", e.creates_seq),
            ratio(s.creates_seq, e.creates_seq),
        ),
        (
            "create latency p50, 1 client".to_owned(),
            ms(s.create_p50),
            ms(e.create_p50),
            dratio(s.create_p50, e.create_p50),
        ),
        (
            "create latency p99, 1 client".to_owned(),
            ms(s.create_p99),
            ms(e.create_p99),
            dratio(s.create_p99, e.create_p99),
        ),
        (
            format!("creates/s, {} clients", c.clients),
            format!("{:.0}", s.creates_conc),
            format!("{:.0}", e.creates_conc),
            ratio(s.creates_conc, e.creates_conc),
        ),
        (
            "gets/s, 1 client".to_owned(),
            format!("{:.0}", s.gets_seq),
            format!("{:.0}", e.gets_seq),
            ratio(s.gets_seq, e.gets_seq),
        ),
        (
            format!("gets/s, {} clients", c.clients),
            format!("{:.0}", s.gets_conc),
            format!("{:.0}", e.gets_conc),
            ratio(s.gets_conc, e.gets_conc),
        ),
        ("watch delivery p50".to_owned(), ms(s.watch_p50), ms(e.watch_p50), dratio(s.watch_p50, e.watch_p50)),
        ("watch delivery p99".to_owned(), ms(s.watch_p99), ms(e.watch_p99), dratio(s.watch_p99, e.watch_p99)),
    ];
    let mut out = String::new();
    out.push_str("## Store: embedded SQLite vs etcd\n\n");
    out.push_str(&format!(
        "`rkube bench store` — {} on {} cores; {} sequential ops, {} concurrent ops from {} clients, {} watched writes; \
values ~400 B (a small ConfigMap's JSON); both stores durable (SQLite WAL with synchronous=FULL and group commit; {etcd} with its default fsync), \
client in the same process for SQLite and over loopback gRPC for etcd.\n\n",
        machine(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        c.ops,
        c.ops * 4,
        c.clients,
        c.watch_ops
    ));
    if cfg!(debug_assertions) {
        out.push_str("**Debug build: these figures understate both stores' clients; run `cargo run --release -p rkube -- bench store`.**\n\n");
    }
    out.push_str("| measure | sqlite | etcd | sqlite / etcd |\n|---|---:|---:|---:|\n");
    for (m, a, b, r) in rows {
        out.push_str(&format!("| {m} | {a} | {b} | {r} |\n"));
    }
    out
}

fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {}", kernel.trim())
}
