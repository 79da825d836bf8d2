//! The highly-available servers benchmark (`rkube bench ha`): the time from `rkube server` starting on an empty
//! data directory to its node Ready; and, on a cluster of three servers on three etcd members, how long writes
//! fail after the server the clients prefer is killed, seen through kubectl's path (the host forwarder) and
//! an agent's (its loopback balancer, from inside its node's namespace), how long the standby takes to lead,
//! and the same writes when the etcd leader is killed. Renders the BENCHMARKS.md section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;

use crate::bench::Guard;
use crate::layout::Layout;
use crate::nodes::{NodeOptions, node_args, spawn_node, wait_node};
use crate::{Error, Result};

/// What the benchmark does.
#[derive(Clone, Debug)]
pub struct HaBenchConfig {
    /// The `rkube` binary the nodes run.
    pub rkube: PathBuf,
    /// Fresh starts timed for the start → Ready measure.
    pub starts: usize,
    /// How long writes are timed after each kill.
    pub window: Duration,
}

/// How long one probe write may take (longer than etcd's own request timeout, about 7 s, so that what etcd does
/// with a write caught in a leader election shows).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One write probe's record: when each write began and ended, and whether it succeeded.
type Writes = Vec<(Instant, Instant, bool)>;

/// What one view saw around one kill.
struct Outage {
    /// From the kill to the end of the first successful write begun after it.
    first_ok: Option<Duration>,
    /// The longest time between two successful writes' ends around the kill.
    gap: Duration,
    /// Writes that failed after the kill.
    errors: usize,
    /// Writes in all.
    writes: usize,
}

fn outage(writes: &Writes, kill: Instant) -> Outage {
    let first_ok = writes.iter().find(|(b, _, ok)| *ok && *b >= kill).map(|(_, e, _)| e.duration_since(kill));
    let ends: Vec<Instant> = writes.iter().filter(|w| w.2).map(|w| w.1).collect();
    let gap = ends.windows(2).map(|w| w[1].duration_since(w[0])).max().unwrap_or_default();
    let errors = writes.iter().filter(|(b, _, ok)| !ok && *b >= kill).count();
    Outage { first_ok, gap, errors, writes: writes.len() }
}

/// Runs every measure; returns the Markdown section.
pub fn run_ha(config: &HaBenchConfig, progress: &mut dyn FnMut(String)) -> Result<String> {
    let parent = std::env::temp_dir().join(format!("rkube-bench-ha-{}", std::process::id()));
    let mut starts = Vec::new();
    for run in 0..config.starts {
        progress(format!("[bench] server start → node Ready, run {}", run + 1));
        starts.push(time_to_ready(config, &parent, run)?);
    }
    let failover = failover(config, &parent, progress);
    let _ = std::fs::remove_dir(&parent);
    Ok(render(config, &starts, &failover?))
}

/// One `rkube server` (embedded agent, SQLite) started in a fresh namespace on an empty data directory: the
/// time from its spawn to its ready line, which it prints once its node is Ready.
fn time_to_ready(config: &HaBenchConfig, parent: &Path, run: usize) -> Result<Duration> {
    let name = format!("bh{}-s{run}", std::process::id() % 100_000);
    let layout = Layout::with_dir(&parent.join(&name), &name)?;
    std::fs::create_dir_all(&layout.dir).map_err(Error::io(format!("creating {}", layout.dir.display())))?;
    let _guard = Guard(layout.clone(), config.rkube.clone());
    crate::net::create_cluster(&layout, 0)?;
    crate::net::create_node(&layout, 1)?;
    let options = NodeOptions::plain("vxlan", 1, 0, true);
    let args = node_args(&layout, 1, &options);
    let began = Instant::now();
    let starting = spawn_node(&layout, &config.rkube, 1, &args)?;
    wait_node(&layout, starting, Duration::from_secs(120), "server start")?;
    Ok(began.elapsed())
}

/// Every failover figure.
struct Failover {
    server_kubectl: Outage,
    server_agent: Outage,
    scheduler_takeover: Option<Duration>,
    controllers_takeover: Option<Duration>,
    etcd_kubectl: Outage,
    etcd_agent: Outage,
    etcd_leader: String,
}

fn failover(config: &HaBenchConfig, parent: &Path, progress: &mut dyn FnMut(String)) -> Result<Failover> {
    let name = format!("bh{}-ha", std::process::id() % 100_000);
    progress(format!("[bench] failover: cluster {name} (3 servers, 3 etcd members, 1 agent)"));
    let node = NodeOptions::plain("vxlan", 3, 3, false);
    let (layout, _guard) = crate::bench::up_guarded(&config.rkube, parent, &name, 1, node, progress)?;

    progress("[bench] failover: killing server n1 (the leader, every client's first choice)".into());
    let n1 = layout.node_pid(1);
    let mut takeover = (None, None);
    let (server_kubectl, server_agent) = around_kill(&layout, config.window, "s", || {
        crate::process::kill(&n1).ok_or_else(|| Error::Invalid("server n1 is not running".into()))?;
        Ok(())
    })
    .and_then(|(k, a, kill)| {
        takeover = leader_takeover(&layout, kill)?;
        Ok((k, a))
    })?;

    let (etcd_leader, m) = etcd_leader(&layout)?;
    progress(format!("[bench] failover: killing the etcd leader {etcd_leader}"));
    let (etcd_kubectl, etcd_agent, _) =
        around_kill(&layout, config.window, "e", || crate::etcd::kill_member(&layout, m).map(|_| ()))?;
    Ok(Failover {
        server_kubectl,
        server_agent,
        scheduler_takeover: takeover.0,
        controllers_takeover: takeover.1,
        etcd_kubectl,
        etcd_agent,
        etcd_leader,
    })
}

/// Writes through both views for a second, calls `kill`, goes on writing for `window`; returns what each
/// view saw and when the kill was.
fn around_kill(
    layout: &Layout,
    window: Duration,
    tag: &str,
    kill: impl FnOnce() -> Result<()>,
) -> Result<(Outage, Outage, Instant)> {
    let until = Instant::now() + Duration::from_secs(1) + window;
    let agent = 4;
    let (kubeconfig, servers) = (layout.kubeconfig(), Layout::server_urls(3));
    let agent_kubeconfig = crate::identity::node_identity_paths(layout, agent).kubeconfig;
    let netns = crate::process::netns_path(&layout.node_netns(agent));
    std::thread::scope(|s| {
        let host = s.spawn(|| probe(None, &kubeconfig, &[], &format!("{tag}-kubectl"), until));
        let node = s.spawn(|| probe(Some(&netns), &agent_kubeconfig, &servers, &format!("{tag}-agent"), until));
        std::thread::sleep(Duration::from_secs(1));
        let at = Instant::now();
        let killed = kill();
        let host = host.join().unwrap_or_else(|_| Err(Error::Invalid("the kubectl probe panicked".into())));
        let node = node.join().unwrap_or_else(|_| Err(Error::Invalid("the agent probe panicked".into())));
        killed?;
        Ok((outage(&host?, at), outage(&node?, at), at))
    })
}

/// Creates ConfigMaps `<prefix>-<n>` one after another until `until` (each may take [`WRITE_TIMEOUT`]), on its own runtime;
/// in `netns` if given (the client and its balancer then dial from there), failing over among `servers` (the
/// agent's client) or through the kubeconfig's server.
fn probe(netns: Option<&Path>, kubeconfig: &Path, servers: &[String], prefix: &str, until: Instant) -> Result<Writes> {
    if let Some(ns) = netns {
        crate::netperf::enter(ns)?;
    }
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io("starting a runtime"))?;
    runtime.block_on(async {
        let client = match servers {
            [] => {
                let config = rkube_client::config::from_file(kubeconfig)
                    .await
                    .map_err(|e| Error::Api(format!("kubeconfig {}: {e}", kubeconfig.display())))?;
                kube::Client::try_from(config).map_err(|e| Error::Api(format!("API client: {e}")))?
            }
            _ => rkube_agent::identity::kubeconfig_client(kubeconfig, servers)
                .await
                .map_err(|e| Error::Api(format!("the agent's client: {e}")))?,
        };
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
        let mut writes = Vec::new();
        let mut n = 0u32;
        while Instant::now() < until {
            n += 1;
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(format!("{prefix}-{n}"));
            let began = Instant::now();
            let created = tokio::time::timeout(WRITE_TIMEOUT, api.create(&Default::default(), &cm)).await;
            writes.push((began, Instant::now(), matches!(created, Ok(Ok(_)))));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(writes)
    })
}

/// After server n1 (the leader) was killed at `kill`: how long until another server holds the scheduler's and
/// the controllers' Leases.
fn leader_takeover(layout: &Layout, kill: Instant) -> Result<(Option<Duration>, Option<Duration>)> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io("starting a runtime"))?;
    runtime.block_on(async {
        let config = rkube_client::config::from_file(&layout.kubeconfig())
            .await
            .map_err(|e| Error::Api(format!("kubeconfig: {e}")))?;
        let client = kube::Client::try_from(config).map_err(|e| Error::Api(format!("API client: {e}")))?;
        let api: kube::Api<Lease> = kube::Api::namespaced(client, "kube-system");
        let mut took = [None, None];
        let deadline = kill + Duration::from_secs(60);
        while took.iter().any(Option::is_none) && Instant::now() < deadline {
            for (slot, lease) in took.iter_mut().zip(["kube-scheduler", "kube-controller-manager"]) {
                if slot.is_none()
                    && let Ok(l) = api.get(lease).await
                    && l.spec.and_then(|s| s.holder_identity).is_some_and(|h| !h.starts_with("n1_"))
                {
                    *slot = Some(kill.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((took[0], took[1]))
    })
}

/// The etcd leader's name and member number.
fn etcd_leader(layout: &Layout) -> Result<(String, u32)> {
    let text = crate::etcd::etcdctl(layout, 3, &["endpoint", "status", "-w", "json"])?;
    let status: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("etcdctl endpoint status: {e}")))?;
    for (m, s) in (1..=3).zip(status.as_array().into_iter().flatten()) {
        let id = &s["Status"]["header"]["member_id"];
        if !id.is_null() && *id == s["Status"]["leader"] {
            return Ok((Layout::etcd_member_name(m), m));
        }
    }
    Err(Error::Invalid(format!("no etcd leader in: {text}")))
}

fn render(config: &HaBenchConfig, starts: &[Duration], f: &Failover) -> String {
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let ms = |d: Option<Duration>| {
        d.map_or("none within the window".to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut sorted = starts.to_vec();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let mut t = String::from("## Highly available servers\n\n");
    let _ = writeln!(
        t,
        "`rkube bench ha` on this machine ({cores} cores, 1-minute load average {load} at the end, rkube {build} \
         build), nodes in network namespaces as `rkube cluster` makes them.\n"
    );
    let _ = writeln!(
        t,
        "**`rkube server` start on an empty machine → node Ready** (fresh data directory, SQLite, embedded agent \
         with its own containerd, vxlan, proxy and DNS on; from the spawn to the ready line the server prints once \
         its node is Ready): {} (median of {}: {}). Upstream 1.36 by hand here: 4.98 s; the goal is a third (1.66 s).\n",
        s(median),
        starts.len(),
        starts.iter().map(|d| s(*d)).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        t,
        "**Failover** on `rkube cluster up --servers 3 --etcd-members 3 --nodes 1`: ConfigMaps created one after \
         another (20 ms apart, 10 s timeout each) through kubectl's path (the host forwarder, which fails over among \
         the servers) and through the agent's (its own client and loopback balancer, inside node n4's namespace), \
         for {} s around each kill (SIGKILL).\n",
        config.window.as_secs()
    );
    let _ = writeln!(
        t,
        "| kill | view | first write after the kill | longest gap between writes | failed writes | writes |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
    let rows = [
        ("server n1 (leader, first choice)", "kubectl", &f.server_kubectl),
        ("server n1 (leader, first choice)", "agent", &f.server_agent),
        (&*format!("etcd leader ({})", f.etcd_leader), "kubectl", &f.etcd_kubectl),
        (&*format!("etcd leader ({})", f.etcd_leader), "agent", &f.etcd_agent),
    ];
    for (kill, view, o) in rows {
        let _ =
            writeln!(t, "| {kill} | {view} | {} | {} | {} | {} |", ms(o.first_ok), ms(Some(o.gap)), o.errors, o.writes);
    }
    let _ = writeln!(
        t,
        "\nA server's death shows to clients as refused or reset connections: the balancers move to the next server \
         at once, and the only write lost is the one in flight. etcd's leader dying is slower: the write in flight \
         while the members elect a new leader is the longest gap above; etcd 3.4's request timeout is 5 s + 2 × the \
         election timeout (1 s) = 7 s, which is what such a write waits for when its proposal is lost with the \
         leader. Writes after it go through the new leader at once."
    );
    let _ = writeln!(
        t,
        "\nA standby server took the leader's Leases {} (scheduler) and {} (controllers) after the kill: leases \
         last 15 s and the leader did not release them (as upstream's defaults, `--leader-elect-lease-duration=15s`).",
        ms(f.scheduler_takeover),
        ms(f.controllers_takeover)
    );
    t
}
