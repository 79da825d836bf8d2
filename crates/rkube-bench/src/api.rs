//! The API server benchmark: a real `rkube server` process (SQLite, then etcd) loaded by kube-rs clients
//! over HTTPS with client certificates, RBAC and durable writes on, as a user's clients would load it.
//! Reported against upstream's figures measured on this same machine (given in the issue).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};

use crate::server::{ServerProcess, client, rss_kb, start_server};
use crate::stats::{ms, percentile, rate};

/// How much load to apply.
#[derive(Debug, Clone)]
pub struct ApiBenchConfig {
    /// The rkube binary to start as the server.
    pub rkube: PathBuf,
    /// The etcd binary for the etcd run.
    pub etcd_binary: PathBuf,
    /// Creates in the single-client measure.
    pub ops: usize,
    /// Concurrent clients in the concurrent measures.
    pub clients: usize,
    /// Objects listed in the list measure.
    pub list_size: usize,
    /// Watchers in the fan-out measure.
    pub watchers: usize,
    /// Objects held for the memory measure.
    pub held: usize,
}

impl Default for ApiBenchConfig {
    fn default() -> Self {
        ApiBenchConfig {
            rkube: PathBuf::from("rkube"),
            etcd_binary: PathBuf::from("/usr/bin/etcd"),
            ops: 1000,
            clients: 32,
            list_size: 3000,
            watchers: 100,
            held: 10_000,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Figures {
    create_1: f64,
    create_1_p50: Duration,
    create_1_p99: Duration,
    create_n: f64,
    create_n_p50: Duration,
    create_n_p99: Duration,
    gets_n: f64,
    patches_n: f64,
    list_p50: Duration,
    list_p99: Duration,
    fanout_p50: Duration,
    fanout_p99: Duration,
    rss_idle_kb: u64,
    rss_held_kb: u64,
}

fn cm(name: String) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name);
    c.data = Some([("key".to_owned(), "v".repeat(256))].into_iter().collect());
    c
}

async fn namespace(c: &kube::Client, name: &str) -> anyhow::Result<Api<ConfigMap>> {
    let ns: Api<Namespace> = Api::all(c.clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(name.to_owned());
    ns.create(&PostParams::default(), &n).await?;
    Ok(Api::namespaced(c.clone(), name))
}

/// Runs `total` operations from `clients` tasks; returns (ops/s, latencies).
async fn fan<F, Fut>(clients: usize, total: usize, op: F) -> anyhow::Result<(f64, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("a load task panicked")??);
    }
    Ok((rate(total, start.elapsed()), all))
}

async fn measure(name: &str, server: &ServerProcess, cfg: &ApiBenchConfig) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let c = client(&server.kubeconfig).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rss_idle_kb = rss_kb(server.child.id());

    eprintln!("[api bench] {name}: {} creates, 1 client", cfg.ops);
    let seq = namespace(&c, "bench-seq").await?;
    let api = seq.clone();
    let (r, mut lat) = fan(1, cfg.ops, move |i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &cm(format!("c{i:06}"))).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    (f.create_1, f.create_1_p50, f.create_1_p99) = (r, percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));

    let n = cfg.ops * 5;
    eprintln!("[api bench] {name}: {n} creates, {} clients", cfg.clients);
    let conc = namespace(&c, "bench-conc").await?;
    let api = conc.clone();
    let (r, mut lat) = fan(cfg.clients, n, move |i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &cm(format!("c{i:06}"))).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    (f.create_n, f.create_n_p50, f.create_n_p99) = (r, percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));

    eprintln!("[api bench] {name}: {n} gets, {} clients", cfg.clients);
    let api = conc.clone();
    let (r, _) = fan(cfg.clients, n, move |i| {
        let api = api.clone();
        async move { api.get(&format!("c{:06}", (i * 7919) % n)).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    f.gets_n = r;

    eprintln!("[api bench] {name}: {n} merge patches, {} clients", cfg.clients);
    let api = conc.clone();
    let (r, _) = fan(cfg.clients, n, move |i| {
        let api = api.clone();
        async move {
            let patch = serde_json::json!({ "metadata": { "labels": { "round": format!("r{i}") } } });
            api.patch(&format!("c{:06}", (i * 7919) % n), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(Into::into)
        }
    })
    .await?;
    f.patches_n = r;

    eprintln!("[api bench] {name}: listing {} ConfigMaps", cfg.list_size);
    let list_ns = namespace(&c, "bench-list").await?;
    let api = list_ns.clone();
    fan(cfg.clients, cfg.list_size, move |i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &cm(format!("l{i:06}"))).await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let l = list_ns.list(&ListParams::default()).await?;
        lat.push(t.elapsed());
        // The controllers publish `kube-root-ca.crt` in every namespace: one more ConfigMap than we made.
        let ours = l.items.iter().filter(|c| c.metadata.name.as_deref() != Some("kube-root-ca.crt")).count();
        anyhow::ensure!(ours == cfg.list_size, "list returned {ours} of our {} ConfigMaps", cfg.list_size);
    }
    (f.list_p50, f.list_p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));

    eprintln!("[api bench] {name}: watch fan-out to {} watchers", cfg.watchers);
    let fan_ns = namespace(&c, "bench-watch").await?;
    let rv = fan_ns.list(&ListParams::default()).await?.metadata.resource_version.unwrap_or_default();
    let seen = Arc::new(tokio::sync::Notify::new());
    let counter = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for _ in 0..cfg.watchers {
        let (api, counter, seen, rv) = (fan_ns.clone(), counter.clone(), seen.clone(), rv.clone());
        watchers.push(tokio::spawn(async move {
            let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await?.boxed();
            while let Some(ev) = stream.next().await {
                if let WatchEvent::Added(_) = ev? {
                    counter.fetch_add(1, Ordering::SeqCst);
                    seen.notify_one();
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lat = Vec::new();
    for round in 0..20usize {
        let target = (round + 1) * cfg.watchers;
        let t = Instant::now();
        fan_ns.create(&PostParams::default(), &cm(format!("w{round:04}"))).await?;
        let deadline = t + Duration::from_secs(30);
        while counter.load(Ordering::SeqCst) < target {
            anyhow::ensure!(
                Instant::now() < deadline,
                "watchers saw {} of {target} events",
                counter.load(Ordering::SeqCst)
            );
            let _ = tokio::time::timeout(Duration::from_millis(50), seen.notified()).await;
        }
        lat.push(t.elapsed());
    }
    for w in watchers {
        w.abort();
    }
    (f.fanout_p50, f.fanout_p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));

    let have = cfg.ops + n + cfg.list_size + 20;
    if cfg.held > have {
        let more = cfg.held - have;
        eprintln!("[api bench] {name}: {more} more ConfigMaps to hold {} in all", cfg.held);
        let hold = namespace(&c, "bench-hold").await?;
        fan(cfg.clients, more, move |i| {
            let api = hold.clone();
            async move { api.create(&PostParams::default(), &cm(format!("h{i:06}"))).await.map(|_| ()).map_err(Into::into) }
        })
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rss_held_kb = rss_kb(server.child.id());
    Ok(f)
}

/// Runs the benchmark against both backends and returns the Markdown section.
pub async fn run(cfg: &ApiBenchConfig) -> anyhow::Result<String> {
    eprintln!("[api bench] sqlite: starting rkube server");
    let sqlite = {
        let server = start_server(&cfg.rkube, &[])?;
        measure("sqlite", &server, cfg).await.map_err(|e| e.context(format!("server log:\n{}", server.log_tail())))?
    };
    eprintln!("[api bench] etcd: starting etcd and rkube server");
    let etcd_fig = {
        let options = rkube_store_etcd::LocalEtcdOptions { binary: cfg.etcd_binary.clone(), ..Default::default() };
        let etcd = rkube_store_etcd::LocalEtcd::start(options).await.context("starting a local etcd")?;
        let server = start_server(&cfg.rkube, &["--etcd-endpoints".to_owned(), etcd.endpoint()])?;
        let f = measure("etcd", &server, cfg)
            .await
            .map_err(|e| e.context(format!("server log:\n{}", server.log_tail())))?;
        drop(server);
        drop(etcd);
        f
    };
    Ok(render(cfg, &sqlite, &etcd_fig))
}

fn render(cfg: &ApiBenchConfig, s: &Figures, e: &Figures) -> String {
    // Upstream 1.36 (apiserver + etcd + controller-manager + scheduler) on this machine, from the issue.
    let up = |v: f64| format!("{v:.0}");
    let ratio = |a: f64, b: f64| format!("{:.2}×", a / b);
    let dratio = |a: Duration, b_ms: f64| format!("{:.2}×", a.as_secs_f64() * 1000.0 / b_ms);
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let rows: Vec<[String; 5]> = vec![
        [
            "creates/s, 1 client".into(),
            format!("{:.0}", s.create_1),
            format!("{:.0}", e.create_1),
            up(506.0),
            ratio(s.create_1, 506.0),
        ],
        [
            "create p50, 1 client".into(),
            ms(s.create_1_p50),
            ms(e.create_1_p50),
            "1.8 ms".into(),
            dratio(s.create_1_p50, 1.8),
        ],
        ["create p99, 1 client".into(), ms(s.create_1_p99), ms(e.create_1_p99), "-".into(), "-".into()],
        [
            format!("creates/s, {} clients", cfg.clients),
            format!("{:.0}", s.create_n),
            format!("{:.0}", e.create_n),
            up(1726.0),
            ratio(s.create_n, 1726.0),
        ],
        [
            format!("create p50, {} clients", cfg.clients),
            ms(s.create_n_p50),
            ms(e.create_n_p50),
            "-".into(),
            "-".into(),
        ],
        [
            format!("create p99, {} clients", cfg.clients),
            ms(s.create_n_p99),
            ms(e.create_n_p99),
            "48 ms".into(),
            dratio(s.create_n_p99, 48.0),
        ],
        [
            format!("gets/s, {} clients", cfg.clients),
            format!("{:.0}", s.gets_n),
            format!("{:.0}", e.gets_n),
            up(3572.0),
            ratio(s.gets_n, 3572.0),
        ],
        [
            format!("merge patches/s, {} clients", cfg.clients),
            format!("{:.0}", s.patches_n),
            format!("{:.0}", e.patches_n),
            up(1607.0),
            ratio(s.patches_n, 1607.0),
        ],
        [
            format!("list {} ConfigMaps p50", cfg.list_size),
            ms(s.list_p50),
            ms(e.list_p50),
            "67 ms".into(),
            dratio(s.list_p50, 67.0),
        ],
        [format!("list {} ConfigMaps p99", cfg.list_size), ms(s.list_p99), ms(e.list_p99), "-".into(), "-".into()],
        [
            format!("watch fan-out to {} watchers p50", cfg.watchers),
            ms(s.fanout_p50),
            ms(e.fanout_p50),
            "-".into(),
            "-".into(),
        ],
        [
            format!("watch fan-out to {} watchers p99", cfg.watchers),
            ms(s.fanout_p99),
            ms(e.fanout_p99),
            "-".into(),
            "-".into(),
        ],
        [
            "server RSS idle".into(),
            mb(s.rss_idle_kb),
            mb(e.rss_idle_kb),
            "496 MB".into(),
            format!("{:.2}×", s.rss_idle_kb as f64 / 1024.0 / 496.0),
        ],
        [
            format!("server RSS holding {} ConfigMaps", cfg.held),
            mb(s.rss_held_kb),
            mb(e.rss_held_kb),
            "725 MB".into(),
            format!("{:.2}×", s.rss_held_kb as f64 / 1024.0 / 725.0),
        ],
    ];
    let mut out = String::from("## API server: rkube vs upstream\n\n");
    out.push_str(&format!(
        "`rkube bench api` — a real `rkube server` process (API server and the controllers it runs; TLS, client-certificate authentication, RBAC and durable writes on) loaded by kube-rs clients in the bench process on the same {}-core machine, ConfigMaps of ~300 B. \
The etcd column runs the same server on Debian's etcd 3.4. Upstream figures: kube-apiserver 1.36 + etcd + controller-manager + scheduler measured on this machine (from the issue); its RSS is the whole control plane's, ours is the one rkube process (store included for SQLite; etcd's own RSS is not counted in the etcd column). The ratio column compares the SQLite column with upstream (rates: higher is better; times and memory: lower is better).\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    ));
    if cfg!(debug_assertions) {
        out.push_str("**Debug build of the bench client: run `cargo run --release -p rkube -- bench api`.**\n\n");
    }
    out.push_str(
        "| measure | rkube (SQLite) | rkube (etcd) | upstream | rkube SQLite / upstream |\n|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3], r[4]));
    }
    out
}
