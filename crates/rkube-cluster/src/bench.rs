//! The pod network benchmark (`rkube bench net`): pod-to-pod TCP throughput and round trips across nodes of a
//! 3-node `rkube cluster` over vxlan and host-gw, against two namespaces joined directly by a veth (the limit
//! on this machine), in one run; and the time from a node's agent starting to every other node having its
//! route; and cluster DNS queries/s and latency from a pod (`poddns`). Renders the BENCHMARKS.md section.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::netperf::{Figures, VethPair, measure};
use crate::nodes::NodeOptions;
use crate::poddns::{DnsFigures, DnsProbe};
use crate::process::run;
use crate::up::UpOptions;
use crate::{Error, Result};

/// What the benchmark does.
#[derive(Clone, Debug)]
pub struct NetBenchConfig {
    /// The `rkube` binary the nodes run.
    pub rkube: PathBuf,
    /// How long the throughput stream runs on each path.
    pub duration: Duration,
    /// Round trips timed on each path.
    pub pings: usize,
}

/// A cluster removed on drop (also when the benchmark fails half-way).
pub(crate) struct Guard(pub(crate) Layout, pub(crate) PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = crate::down::down(&self.0, &self.1) {
            eprintln!("[bench] removing cluster {}: {e}", self.0.name);
        }
    }
}

/// Brings up the benchmark cluster `name` under `parent` (`nodes` nodes started with `node`), removed when the
/// returned guard drops.
pub(crate) fn up_guarded(
    rkube: &Path,
    parent: &Path,
    name: &str,
    nodes: u32,
    node: NodeOptions,
    progress: &mut dyn FnMut(String),
) -> Result<(Layout, Guard)> {
    let options = UpOptions {
        name: name.to_owned(),
        nodes,
        state_dir: Some(parent.join(name)),
        node,
        rkube: rkube.to_path_buf(),
        timeout: Duration::from_secs(180),
    };
    let layout = crate::up::up(&options, progress)?;
    let guard = Guard(layout.clone(), rkube.to_path_buf());
    Ok((layout, guard))
}

/// One backend's results.
struct BackendRun {
    backend: &'static str,
    figures: Figures,
    join: Duration,
    ready: Duration,
}

/// Runs every measure; returns the Markdown section. `dns` runs inside a pod of a 1-node cluster with services
/// on (the DNS client lives in rkube-dns, which this crate does not depend on).
pub fn run_net(config: &NetBenchConfig, dns: &DnsProbe, progress: &mut dyn FnMut(String)) -> Result<String> {
    progress("[bench] veth between two namespaces".into());
    let pair = VethPair::new()?;
    let (a, b, ip) = pair.ends();
    let veth = measure(&a, &b, ip, config.duration, config.pings)?;
    drop(pair);
    let parent = std::env::temp_dir().join(format!("rkube-bench-net-{}", std::process::id()));
    let runs: Result<Vec<BackendRun>> = [("vxlan", "vx"), ("host-gw", "hg")]
        .into_iter()
        .map(|(backend, short)| run_backend(config, &parent, backend, short, progress))
        .collect();
    let dns_name = format!("bn{}-dns", std::process::id() % 100_000);
    let dns = runs.is_ok().then(|| crate::poddns::measure_dns(&config.rkube, &parent, &dns_name, dns, progress));
    // Empty by now (each cluster's `down` removed its state directory), also after a failure.
    let _ = std::fs::remove_dir(&parent);
    let dns = dns.transpose()?;
    Ok(render(config, &veth, &runs?, dns.as_ref()))
}

fn run_backend(
    config: &NetBenchConfig,
    parent: &Path,
    backend: &'static str,
    short: &str,
    progress: &mut dyn FnMut(String),
) -> Result<BackendRun> {
    let name = format!("bn{}-{short}", std::process::id() % 100_000);
    progress(format!("[bench] {backend}: cluster {name}"));
    let node = NodeOptions::plain(backend, 1, 0, false);
    let (layout, guard) = up_guarded(&config.rkube, parent, &name, 3, node, progress)?;
    let ips = pause_pods(&layout, &["n1", "n2"])?;
    let (ns1, ns2) = (pod_netns(&layout, ips[0])?, pod_netns(&layout, ips[1])?);
    progress(format!("[bench] {backend}: pod {} on n1 -> pod {} on n2", ips[0], ips[1]));
    let figures = measure(&ns1, &ns2, ips[1], config.duration, config.pings)?;
    let (join, ready) = join_time(&layout, &config.rkube)?;
    drop(guard);
    Ok(BackendRun { backend, figures, join, ready })
}

/// Pause pods on `nodes` (the image every node has); their IPs once they run, in that order.
pub(crate) fn pause_pods(layout: &Layout, nodes: &[&str]) -> Result<Vec<Ipv4Addr>> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io("starting a runtime"))?;
    runtime.block_on(async {
        let config = rkube_client::config::from_file(&layout.kubeconfig())
            .await
            .map_err(|e| Error::Api(format!("kubeconfig: {e}")))?;
        let client = kube::Client::try_from(config).map_err(|e| Error::Api(format!("API client: {e}")))?;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "default");
        for node in nodes {
            let pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("bench-{node}")},
                "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [
                    {"name": "pause", "image": "rkube.io/pause:1.0", "imagePullPolicy": "Never"}]}
            }))
            .map_err(|e| Error::Api(format!("pod: {e}")))?;
            pods.create(&Default::default(), &pod).await.map_err(|e| Error::Api(format!("creating a pod: {e}")))?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut ips = Vec::new();
            for node in nodes {
                let p = pods.get(&format!("bench-{node}")).await.map_err(|e| Error::Api(e.to_string()))?;
                let status = p.status.unwrap_or_default();
                if status.phase.as_deref() == Some("Running")
                    && let Some(ip) = status.pod_ip.and_then(|i| i.parse().ok())
                {
                    ips.push(ip);
                }
            }
            if ips.len() == nodes.len() {
                return Ok(ips);
            }
            if Instant::now() >= deadline {
                return Err(Error::Api("the benchmark's pods did not run within 60 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The network namespace (as `/proc/<pid>/ns/net`) of the pause process whose pod has address `ip` in this
/// cluster (other clusters use the same addresses): its parent, the shim, names the cluster's containerd.
pub(crate) fn pod_netns(layout: &Layout, ip: Ipv4Addr) -> Result<PathBuf> {
    let want = format!("inet {ip}/");
    let dir = layout.dir.as_os_str().as_encoded_bytes();
    for e in std::fs::read_dir("/proc").map_err(Error::io("reading /proc"))?.flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if !cmdline.starts_with(b"/pause") {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).unwrap_or("0").to_owned();
        let shim = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
        if !shim.windows(dir.len()).any(|w| w == dir) {
            continue;
        }
        let ns = e.path().join("ns").join("net");
        let net = format!("--net={}", ns.display());
        if run("nsenter", &[&net, "--", "ip", "-o", "-4", "addr"]).is_ok_and(|out| out.contains(&want)) {
            return Ok(ns);
        }
    }
    Err(Error::Invalid(format!("no pod network namespace holds {ip}")))
}

/// Node n3 crashes and its Node is deleted (its peers drop its route); then its agent starts again: how long
/// until both n1 and n2 route its pods, and how long until n3 printed its ready line.
fn join_time(layout: &Layout, rkube: &Path) -> Result<(Duration, Duration)> {
    let peers_routed = |count: usize| {
        ["n1", "n2"].iter().all(|n| {
            let i = crate::layout::parse_node(n, 3).unwrap_or(1);
            let routes = run("ip", &["-n", &layout.node_netns(i), "route"]).unwrap_or_default();
            routes.lines().filter(|l| l.starts_with("172.30.") && !l.contains("cni0")).count() == count
        })
    };
    crate::nodes::stop(layout, "n3")?;
    let kubectl = run_kubectl(layout, &["delete", "node", "n3"]);
    kubectl?;
    wait(Duration::from_secs(60), "n3's routes to go", || peers_routed(1))?;
    let args = crate::state::ClusterState::load(layout)?.node_args.remove("n3").unwrap_or_default();
    let began = Instant::now();
    let mut starting = crate::nodes::spawn_node(layout, rkube, 3, &args)?;
    let mut exited = None;
    let routed = wait(Duration::from_secs(120), "n3's routes on n1 and n2", || {
        exited = starting.exited();
        exited.is_some() || peers_routed(2)
    });
    if let Some(status) = exited {
        return Err(crate::process::step_error(
            "n3 starting again",
            format!("it exited ({status})"),
            &layout.node_log(3),
        ));
    }
    routed.map_err(|e| crate::process::step_error("n3 starting again", e.to_string(), &layout.node_log(3)))?;
    let join = began.elapsed();
    crate::nodes::wait_node(layout, starting, Duration::from_secs(120), "n3 starting again")?;
    Ok((join, began.elapsed()))
}

fn run_kubectl(layout: &Layout, args: &[&str]) -> Result<()> {
    let kubeconfig = layout.kubeconfig().display().to_string();
    let mut all = vec!["--kubeconfig", &kubeconfig];
    all.extend_from_slice(args);
    run("/usr/lib/google-cloud-sdk/bin/kubectl.1.33", &all).map(|_| ())
}

/// Polls `check` every 10 ms.
fn wait(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            return Err(Error::Invalid(format!("not within {} s: {what}", timeout.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn render(config: &NetBenchConfig, veth: &Figures, runs: &[BackendRun], dns: Option<&DnsFigures>) -> String {
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut t = String::from("## Pod network across nodes\n\n");
    let _ = writeln!(
        t,
        "`rkube bench net`: a 3-node `rkube cluster` per backend (nodes in network namespaces on one bridge, leases \
         from the nodes' podCIDRs), a pause pod on n1 and one on n2; from the first pod's network namespace to the \
         second's, one TCP stream for {} s ({} KiB writes) and {} one-byte round trips on one connection \
         (TCP_NODELAY), both ends in the benchmark's own threads. Baseline: two namespaces joined directly by a \
         veth. This machine: {cores} cores, kernel {}, 1-minute load average {load} at the end; {build} build \
         (the datapath is the kernel's; the build shows in the joining times).\n",
        config.duration.as_secs(),
        128,
        config.pings,
        kernel.trim()
    );
    let _ = writeln!(t, "| path | TCP throughput | round trip p50 | round trip p99 |");
    let _ = writeln!(t, "|---|---:|---:|---:|");
    let row = |t: &mut String, name: &str, f: &Figures| {
        let _ = writeln!(t, "| {name} | {:.2} Gbit/s | {} | {} |", f.gbit_s, us(f.rtt_p50), us(f.rtt_p99));
    };
    row(&mut t, "veth between two namespaces (the limit here)", veth);
    for r in runs {
        row(&mut t, &format!("pod to pod across nodes, {}", r.backend), &r.figures);
    }
    let _ = writeln!(t, "\n**Node joining** (n3 crashed, its Node deleted, then its agent started again):\n");
    let _ = writeln!(t, "| backend | agent start → route on every other node | agent start → n3 ready |");
    let _ = writeln!(t, "|---|---:|---:|");
    for r in runs {
        let _ = writeln!(t, "| {} | {:.2} s | {:.2} s |", r.backend, r.join.as_secs_f64(), r.ready.as_secs_f64());
    }
    if let Some(d) = dns {
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        let _ = writeln!(
            t,
            "\n**Cluster DNS from a pod** (a 1-node cluster with the service proxy in iptables mode and the DNS on; \
             from a pause pod's network namespace, {} UDP clients, one query in flight each, a new socket per query, \
             for {} s, asking the cluster DNS at 10.254.0.2:53, i.e. through the proxy's DNAT to the node's DNS, \
             for the A record of `kubernetes.default.svc.cluster.local`; same {build} build; the loopback figure \
             from the host is in the proxy section):\n",
            d.clients,
            d.duration.as_secs()
        );
        let _ = writeln!(t, "| queries/s | p50 | p99 | answered | errors |");
        let _ = writeln!(t, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(t, "| {:.0} | {} | {} | {} | {} |", d.qps, ms(d.p50), ms(d.p99), d.queries, d.errors);
    }
    t
}
