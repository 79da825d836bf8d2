//! `rkube bench`: measurements written into BENCHMARKS.md.

use std::path::PathBuf;

/// Which benchmark to run, and where its figures go.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: What,
    /// The Markdown file whose section the benchmark rewrites.
    #[arg(long, global = true, default_value = "BENCHMARKS.md")]
    output: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// The store backends side by side: creates/s, gets/s, watch latency, for SQLite and etcd.
    Store(StoreBenchArgs),
    /// The API server under load from kube-rs clients, on SQLite and on etcd, against upstream's figures.
    Api(ApiBenchArgs),
    /// The scheduler and controllers with thousands of simulated nodes: pods bound/s, a large Deployment's
    /// time to Running, the server's memory.
    Scheduling(SchedulingBenchArgs),
    /// The node agent on a real containerd: pod start-up latency, the server's memory with pods running, the
    /// CPU of an idle node.
    Node(NodeBenchArgs),
    /// The service proxy and the cluster DNS: rules built and applied for 1k and 10k services (full sync and a
    /// one-endpoint change, iptables vs nftables, in network namespaces of its own), the proxy's memory at the
    /// largest size, DNS queries/s and p99.
    Proxy(ProxyBenchArgs),
    /// The pod network across nodes (3-node `rkube cluster`s, vxlan and host-gw): pod-to-pod TCP throughput and
    /// round trips against two namespaces joined by a veth, and the time from a node joining to every other
    /// node routing its pods; cluster DNS queries/s and p99 from a pod of a 1-node cluster.
    Net(NetBenchArgs),
    /// `rkube backup` and `rkube restore` of 10k objects on SQLite and etcd, and `rkube migrate --to-etcd`.
    Backup(rkube_backup::bench::BenchArgs),
    /// Highly available servers: `rkube server` start → node Ready, and write failover (kubectl's and an agent's
    /// view) when a server or the etcd leader of a 3-server, 3-member `rkube cluster` is killed.
    Ha,
}

#[derive(clap::Args, Debug)]
struct NetBenchArgs {
    /// Seconds of the throughput stream on each path.
    #[arg(long, default_value_t = 3)]
    duration: u64,
    /// Round trips timed on each path.
    #[arg(long, default_value_t = 2000)]
    pings: usize,
    /// Concurrent DNS clients in the pod.
    #[arg(long, default_value_t = 16)]
    dns_clients: usize,
    /// How long the pod queries the cluster DNS.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    dns_duration: std::time::Duration,
}

#[derive(clap::Args, Debug)]
struct ProxyBenchArgs {
    /// Service counts, one run per backend each.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 10_000])]
    services: Vec<usize>,
    /// Endpoints per service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Concurrent DNS clients.
    #[arg(long, default_value_t = 16)]
    dns_clients: usize,
    /// Longest a backend's run may take at one size before it is stopped and reported as unfinished.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    limit: std::time::Duration,
    /// How long the DNS is queried.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    dns_duration: std::time::Duration,
}

#[derive(clap::Args, Debug)]
struct NodeBenchArgs {
    /// Pods created at once.
    #[arg(long, default_value_t = 30)]
    pods: usize,
    /// Pods of the small batch measured first (upstream's kubelet figures are for 2 pods; 0 skips it).
    #[arg(long, default_value_t = 2)]
    few_pods: usize,
    /// Single pods started one after another once the batch is deleted.
    #[arg(long, default_value_t = 3)]
    single_runs: usize,
    /// How long the node idles with the pods running, for the CPU measure.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle: std::time::Duration,
}

#[derive(clap::Args, Debug)]
struct SchedulingBenchArgs {
    /// Simulated node counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000])]
    nodes: Vec<usize>,
    /// Pods created in each run.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Replicas of the timed Deployment.
    #[arg(long, default_value_t = 1000)]
    replicas: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 32)]
    clients: usize,
}

#[derive(clap::Args, Debug)]
struct ApiBenchArgs {
    /// Creates by one client (the concurrent measures do five times as many).
    #[arg(long, default_value_t = 1000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// ConfigMaps in the list measure.
    #[arg(long, default_value_t = 3000)]
    list_size: usize,
    /// Watchers in the fan-out measure.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// ConfigMaps held for the memory measure.
    #[arg(long, default_value_t = 10_000)]
    held: usize,
    /// The etcd binary for the etcd run.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_binary: PathBuf,
}

#[derive(clap::Args, Debug)]
struct StoreBenchArgs {
    /// Operations done by one client (the concurrent measures do four times as many).
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Writes timed for watch delivery latency.
    #[arg(long, default_value_t = 500)]
    watch_ops: usize,
    /// The etcd binary to benchmark against.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_binary: PathBuf,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (name, section) = match args.what {
        What::Store(a) => {
            let config = rkube_bench::store::StoreBenchConfig {
                ops: a.ops,
                clients: a.clients,
                watch_ops: a.watch_ops,
                etcd_binary: a.etcd_binary,
            };
            ("store", runtime.block_on(rkube_bench::store::run(&config))?)
        }
        What::Api(a) => {
            let config = rkube_bench::api::ApiBenchConfig {
                rkube: std::env::current_exe()?,
                etcd_binary: a.etcd_binary,
                ops: a.ops,
                clients: a.clients,
                list_size: a.list_size,
                watchers: a.watchers,
                held: a.held,
            };
            ("api", runtime.block_on(rkube_bench::api::run(&config))?)
        }
        What::Scheduling(a) => {
            let config = rkube_bench::scheduling::SchedulingBenchConfig {
                rkube: std::env::current_exe()?,
                nodes: a.nodes,
                pods: a.pods,
                replicas: a.replicas,
                clients: a.clients,
            };
            ("scheduling", runtime.block_on(rkube_bench::scheduling::run(&config))?)
        }
        What::Node(a) => {
            let config = rkube_bench::node::NodeBenchConfig {
                rkube: std::env::current_exe()?,
                pods: a.pods,
                few: a.few_pods,
                single_runs: a.single_runs,
                idle: a.idle,
            };
            ("node", runtime.block_on(rkube_bench::node::run(&config))?)
        }
        What::Backup(a) => ("backup", runtime.block_on(rkube_backup::bench::run(&a))?),
        What::Proxy(a) => ("proxy", runtime.block_on(proxy_section(&a))?),
        What::Net(a) => {
            let config = rkube_cluster::bench::NetBenchConfig {
                rkube: std::env::current_exe()?,
                duration: std::time::Duration::from_secs(a.duration),
                pings: a.pings,
            };
            let probe = move || pod_dns(a.dns_clients, a.dns_duration);
            ("net", rkube_cluster::bench::run_net(&config, &probe, &mut |line| eprintln!("{line}"))?)
        }
        What::Ha => {
            let config = rkube_cluster::habench::HaBenchConfig {
                rkube: std::env::current_exe()?,
                starts: 3,
                window: std::time::Duration::from_secs(12),
            };
            ("ha", rkube_cluster::habench::run_ha(&config, &mut |line| eprintln!("{line}"))?)
        }
    };
    rkube_bench::report::write_section(&args.output, name, &section)?;
    println!("{section}");
    eprintln!("[bench] wrote the {name} section of {}", args.output.display());
    Ok(())
}

/// The DNS part of `rkube bench net`, called on a thread inside a pod's network namespace: its own
/// current-thread runtime so every socket is made on this thread (and so in the pod), a wait until the cluster
/// DNS answers through the proxy, then `clients` clients for `duration`.
fn pod_dns(clients: usize, duration: std::time::Duration) -> Result<rkube_cluster::poddns::DnsFigures, String> {
    use rkube_dns::proto::rr::RecordType;
    const NAME: &str = "kubernetes.default.svc.cluster.local.";
    let server: std::net::SocketAddr = ([10, 254, 0, 2], 53).into();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match rkube_dns::client::query(server, NAME, RecordType::A).await {
                Ok(m) if !m.answers().is_empty() => break,
                Ok(m) if std::time::Instant::now() >= deadline => {
                    return Err(format!("{NAME} has no answer within 60 s: {:?}", m.response_code()));
                }
                Err(e) if std::time::Instant::now() >= deadline => return Err(e.to_string()),
                _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
        let r = rkube_dns::client::bench(server, &[(NAME.to_owned(), RecordType::A)], clients, duration).await;
        Ok(rkube_cluster::poddns::DnsFigures {
            clients,
            duration,
            queries: r.queries,
            errors: r.errors,
            qps: r.qps,
            p50: r.p50,
            p99: r.p99,
        })
    })
}

/// `rkube bench proxy`: runs every measure and renders the BENCHMARKS.md section.
async fn proxy_section(a: &ProxyBenchArgs) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let ms = |d: std::time::Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let kib = |b: usize| format!("{:.0} KiB", b as f64 / 1024.0);
    // Memory first, while this process is fresh (freed memory is not given back, so later runs would hide it).
    let largest = a.services.iter().copied().max().unwrap_or(0);
    let (before, held) = rkube_proxy::bench::memory(largest, a.endpoints).await?;
    let results = rkube_proxy::bench::run_all_within(&a.services, a.endpoints, a.limit).await?;
    let mut t = String::from("## Service proxy and cluster DNS\n\n");
    writeln!(
        t,
        "Rules rendered and applied for real (`iptables-restore --noflush` / `nft -f`, one run per sync) in a"
    )?;
    writeln!(t, "network namespace of the benchmark's own, {} endpoints per service:\n", a.endpoints)?;
    writeln!(t, "| backend | services | full sync | bytes applied | one endpoint changed | bytes applied |")?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|")?;
    for r in &results {
        match r {
            Ok(r) => writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} |",
                r.mode,
                r.services,
                ms(r.full_sync),
                kib(r.full_bytes),
                ms(r.one_endpoint),
                kib(r.partial_bytes)
            )?,
            Err((mode, n, why)) => writeln!(t, "| {mode} | {n} | {why} | | | |")?,
        }
    }
    let iptables = String::from_utf8_lossy(&std::process::Command::new("iptables").arg("--version").output()?.stdout)
        .trim()
        .to_owned();
    let nft =
        String::from_utf8_lossy(&std::process::Command::new("nft").arg("--version").output()?.stdout).trim().to_owned();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    writeln!(t, "\nTools: {iptables}, {nft}; rkube {profile} build.")?;
    if let Some(&n) = a.services.iter().min()
        && let Some(legacy) = legacy_restore(n, a.endpoints).await?
    {
        writeln!(
            t,
            "\nThe same full iptables sync at {n} services fed to `iptables-legacy-restore` instead of the \
             nf_tables-backed `iptables-restore`: {} (the rules are the same; the nf_tables backend's restore is what \
             is slow, which is why upstream moved to the nftables mode).",
            ms(legacy)
        )?;
    }
    writeln!(
        t,
        "\nProxy memory at {largest} services × {} endpoints: the benchmark process's RSS grew from {:.1} MiB to \
         {:.1} MiB (+{:.1} MiB) over one full nftables sync at that size, rules piped to a no-op: the model, the \
         applied state and the rendered text (transient, but freed memory is not given back, so this is the peak). \
         A live proxy's Service and EndpointSlice caches come on top.",
        a.endpoints,
        before as f64 / 1024.0,
        held as f64 / 1024.0,
        held.saturating_sub(before) as f64 / 1024.0
    )?;
    let dns = rkube_dns::bench::run(1000, a.dns_clients, a.dns_duration).await?;
    writeln!(
        t,
        "\nCluster DNS (rkube-dns) with 1000 services, {} UDP clients over loopback for {:?} (from the host, not a \
         pod: the pod path adds the proxy's DNAT; `rkube bench net` measures it from a pod): {:.0} queries/s, p50 {}, p99 {}, {} errors.",
        a.dns_clients,
        a.dns_duration,
        dns.qps,
        ms(dns.p50),
        ms(dns.p99),
        dns.errors
    )?;
    writeln!(
        t,
        "\nAnchors: upstream's iptables mode re-renders every service on each full sync (O(services)); nftables \
         changes only what changed; KEP-3453 took 5000-node network programming latency p50 from 27 s to 13 s."
    )?;
    Ok(t)
}

/// Time of `iptables-legacy-restore` applying a full iptables render of `services` × `endpoints` in a namespace
/// of its own; `None` when the legacy tool is not installed.
async fn legacy_restore(services: usize, endpoints: usize) -> anyhow::Result<Option<std::time::Duration>> {
    let ns = rkube_proxy::bench::BenchNetns::create(&format!("rkp-bench-legacy-{}", std::process::id()))?;
    let exec = ns.exec();
    if !exec.available("iptables-legacy-restore").await {
        return Ok(None);
    }
    let opts = rkube_proxy::RuleOptions { cluster_cidr: Some("172.30.0.0/16".into()), ..Default::default() };
    let text = rkube_proxy::iptables::Iptables::new(opts)
        .render(&rkube_proxy::bench::synthetic_state(services, endpoints), true)
        .text;
    let t = std::time::Instant::now();
    exec.run(&["iptables-legacy-restore", "-w", "5", "--noflush", "--counters"], Some(&text)).await?;
    Ok(Some(t.elapsed()))
}
