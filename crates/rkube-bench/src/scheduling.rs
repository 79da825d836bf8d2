//! The scheduling benchmark: a real `rkube server` (API server, scheduler and controllers in one process, as
//! rkube runs by default) and thousands of simulated nodes (`rkube sim nodes`, a second process), loaded with
//! pods created by kube-rs clients; measures pods bound per second, the time for a large Deployment to be
//! fully Running, and the server's memory at that scale. One more run at the largest size moves the
//! controllers into a process of their own (`--disable-controller-manager` and `rkube controller-manager`,
//! as upstream runs them) to measure their memory and CPU alone. Compared with upstream's scheduler_perf
//! floors from the issue.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;

mod podlite;

use podlite::PodLite;

use crate::server::{ServerProcess, client, cpu_time, rss_kb, start_server, wait_for_line};
use crate::stats::rate;

/// How much to schedule.
#[derive(Debug, Clone)]
pub struct SchedulingBenchConfig {
    /// The rkube binary (server and simulator).
    pub rkube: PathBuf,
    /// Simulated node counts, one run each.
    pub nodes: Vec<usize>,
    /// Pods created in each run.
    pub pods: usize,
    /// Replicas of the Deployment timed in each run.
    pub replicas: usize,
    /// Concurrent clients creating pods.
    pub clients: usize,
}

/// One run's figures.
#[derive(Debug, Default, Clone)]
struct Figures {
    nodes: usize,
    /// Whether the controllers ran in a process of their own.
    apart: bool,
    register: Duration,
    created_per_s: f64,
    bound_per_s: f64,
    all_bound: Duration,
    deployment_running: Duration,
    /// When the Deployment's last pod was created, bound and Running, from the watch's start.
    deployment: Timeline,
    rss_kb: u64,
    /// The controller manager's RSS after the Deployment (when apart).
    cm_rss_kb: u64,
    /// The server's CPU time per pod, from the first create to the last binding.
    server_cpu_per_pod: Duration,
    /// The controller manager's, over the same span.
    cm_cpu_per_pod: Duration,
    /// The simulator's, over the same span.
    sim_cpu_per_pod: Duration,
    /// The bench's own (its clients and watch), over the same span.
    bench_cpu_per_pod: Duration,
}

/// A helper process (simulator, controller manager), stopped by PID on drop.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rkube <args> --kubeconfig K` and waits for a line holding `marker` on its stdout.
fn start_helper(rkube: &Path, kubeconfig: &Path, args: &[&str], marker: &'static str) -> anyhow::Result<Helper> {
    let mut child = Command::new(rkube)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting rkube {}", args.join(" ")))?;
    let stdout = child.stdout.take().context("helper stdout")?;
    let helper = Helper(child);
    let ready = wait_for_line(stdout, marker);
    anyhow::ensure!(ready.recv().unwrap_or(false), "rkube {} exited before it was ready", args.join(" "));
    Ok(helper)
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("p-{i}"), "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    }))
    .unwrap_or_default()
}

async fn namespace(c: &kube::Client, name: &str) -> anyhow::Result<()> {
    let ns: Api<Namespace> = Api::all(c.clone());
    let mut n = Namespace::default();
    n.metadata.name = Some(name.to_owned());
    ns.create(&PostParams::default(), &n).await.with_context(|| format!("creating namespace {name}"))?;
    // Pods are admitted only once the service-account controller made the namespace's `default` account.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(c.clone(), name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sas.get_opt("default").await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "no default service account in {name} after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// When the pods of a namespace were first seen, bound and Running (each the time the last of `want` pods got
/// there, from the moment the watch started).
#[derive(Debug, Default, Clone, Copy)]
struct Timeline {
    created: Duration,
    bound: Duration,
    running: Duration,
}

/// How far the pods must get before [`wait_pods`] returns.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Bound,
    Running,
}

/// Waits until `want` pods of namespace `ns` reach `until`, with progress; returns when the last one did, and
/// when the last of them was first seen, bound and Running (a pod that is done before it is seen running, as
/// `Stage::Bound` allows, leaves `running` at zero).
async fn wait_pods(c: &kube::Client, ns: &str, want: usize, until: Stage) -> anyhow::Result<(Instant, Timeline)> {
    let api: Api<PodLite> = Api::namespaced(c.clone(), ns);
    let (mut seen, mut bound_set, mut running_set) = (HashSet::new(), HashSet::new(), HashSet::new());
    let what = if until == Stage::Bound { "bound" } else { "Running" };
    let finished = |b: &HashSet<String>, r: &HashSet<String>| if until == Stage::Bound { b.len() } else { r.len() };
    let mut timeline = Timeline::default();
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let start = Instant::now();
    let mut last_report = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while finished(&bound_set, &running_set) < want {
        let next = tokio::time::timeout_at(deadline.into(), stream.try_next()).await.with_context(|| {
            format!("only {} of {want} pods {what} after 10 minutes", finished(&bound_set, &running_set))
        })?;
        let event = next.context("watching pods")?.context("the pod watch ended")?;
        let p = match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            _ => continue,
        };
        let name = p.name().to_owned();
        let at = start.elapsed();
        if seen.insert(name.clone()) && seen.len() == want {
            timeline.created = at;
        }
        if p.bound() && bound_set.insert(name.clone()) && bound_set.len() == want {
            timeline.bound = at;
        }
        if p.running() && running_set.insert(name) && running_set.len() == want {
            timeline.running = at;
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "[scheduling bench]   {}/{want} pods {what} ({} seen, {} bound, {} Running)",
                finished(&bound_set, &running_set),
                seen.len(),
                bound_set.len(),
                running_set.len()
            );
            last_report = Instant::now();
        }
    }
    Ok((Instant::now(), timeline))
}

async fn measure(
    cfg: &SchedulingBenchConfig,
    server: &ServerProcess,
    nodes: usize,
    apart: bool,
) -> anyhow::Result<Figures> {
    let mut f = Figures { nodes, apart, ..Figures::default() };
    eprintln!("[scheduling bench] {nodes} nodes: registering simulated nodes");
    let t = Instant::now();
    let sim = start_helper(&cfg.rkube, &server.kubeconfig, &["sim", "nodes", "--count", &nodes.to_string()], "ready")?;
    f.register = t.elapsed();
    // No status port: the bench reads the process's RSS and CPU from /proc.
    let cm = match apart {
        true => Some(start_helper(
            &cfg.rkube,
            &server.kubeconfig,
            &["controller-manager", "--secure-port", "0"],
            "is ready",
        )?),
        false => None,
    };
    let cm_cpu = || cm.as_ref().map(|c| cpu_time(c.0.id())).unwrap_or_default();
    let c = client(&server.kubeconfig).await?;

    eprintln!("[scheduling bench] {nodes} nodes: creating {} pods with {} clients", cfg.pods, cfg.clients);
    namespace(&c, "sched").await?;
    let watch = {
        let c = c.clone();
        let want = cfg.pods;
        tokio::spawn(async move { wait_pods(&c, "sched", want, Stage::Bound).await })
    };
    // Creates read the answer as a PodLite too: the full Pod is decoded by nobody (see podlite.rs).
    let pods = kube::core::Request::new(<Pod as kube::Resource>::url_path(&(), Some("sched")));
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = (cpu_time(server.child.id()), cpu_time(sim.0.id()), cpu_time(std::process::id()), cm_cpu());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cfg.clients {
        let (next, c, pods, total) = (next.clone(), c.clone(), pods.clone(), cfg.pods);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let req = pods.create(&PostParams::default(), serde_json::to_vec(&pod(i))?)?;
                c.request::<PodLite>(req).await.with_context(|| format!("creating pod p-{i}"))?;
            }
        }));
    }
    for t in tasks {
        t.await.context("a load task panicked")??;
    }
    f.created_per_s = rate(cfg.pods, start.elapsed());
    let (all_bound, _) = watch.await.context("the watch task panicked")??;
    f.all_bound = all_bound - start;
    f.bound_per_s = rate(cfg.pods, f.all_bound);
    let per_pod = |now: Duration, before: Duration| now.saturating_sub(before) / cfg.pods.max(1) as u32;
    f.server_cpu_per_pod = per_pod(cpu_time(server.child.id()), cpu_before.0);
    f.sim_cpu_per_pod = per_pod(cpu_time(sim.0.id()), cpu_before.1);
    f.bench_cpu_per_pod = per_pod(cpu_time(std::process::id()), cpu_before.2);
    f.cm_cpu_per_pod = per_pod(cm_cpu(), cpu_before.3);

    // The Deployment is timed on a settled cluster: the simulator still marks the first pods Running for a
    // while after the last binding, and that backlog of status writes is not the Deployment's.
    eprintln!("[scheduling bench] {nodes} nodes: waiting for the {} pods to be Running", cfg.pods);
    wait_pods(&c, "sched", cfg.pods, Stage::Running).await?;

    eprintln!("[scheduling bench] {nodes} nodes: a Deployment of {} replicas", cfg.replicas);
    namespace(&c, "deploy").await?;
    let running_watch = {
        let c = c.clone();
        let want = cfg.replicas;
        tokio::spawn(async move { wait_pods(&c, "deploy", want, Stage::Running).await })
    };
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "big"},
        "spec": {"replicas": cfg.replicas, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}
    }))?;
    let start = Instant::now();
    Api::<Deployment>::namespaced(c.clone(), "deploy").create(&PostParams::default(), &deployment).await?;
    let (done, timeline) = running_watch.await.context("the watch task panicked")??;
    f.deployment_running = done - start;
    f.deployment = timeline;
    f.rss_kb = rss_kb(server.child.id());
    f.cm_rss_kb = cm.as_ref().map(|c| rss_kb(c.0.id())).unwrap_or_default();
    Ok(f)
}

/// Runs one measure per node count and returns the Markdown section.
pub async fn run(cfg: &SchedulingBenchConfig) -> anyhow::Result<String> {
    let mut all = Vec::new();
    let largest = cfg.nodes.iter().copied().max();
    let runs = cfg.nodes.iter().map(|&n| (n, false)).chain(largest.map(|n| (n, true)));
    for (nodes, apart) in runs {
        eprintln!(
            "[scheduling bench] {nodes} nodes: starting rkube server{}",
            if apart { " without controllers, and rkube controller-manager" } else { "" }
        );
        let flags = if apart { vec!["--disable-controller-manager".to_owned()] } else { Vec::new() };
        let server = start_server(&cfg.rkube, &flags)?;
        let f = measure(cfg, &server, nodes, apart)
            .await
            .map_err(|e| e.context(format!("server log:\n{}", server.log_tail())))?;
        all.push(f);
    }
    Ok(render(cfg, &all))
}

fn render(cfg: &SchedulingBenchConfig, all: &[Figures]) -> String {
    let mut out = format!(
        "`rkube bench scheduling`: one `rkube server` process (SQLite store, API server, scheduler and controllers \
         together, as rkube runs by default; in the row marked \"apart\" the controllers run as `rkube controller-manager`, \
         a process of their own, to measure them alone), simulated nodes from `rkube sim nodes` (another process), {} pods (100m CPU, 128Mi each) created \
         by {} kube-rs clients, then, once they are all Running, a Deployment of {} replicas. \"Bound/s\" counts from the first create to the last \
         binding seen by a watch, so it includes the API server's work for creates, binds and the simulator's status \
         writes; all of it shares the machine's 2 cores, with the bench's own clients (which decode only the name, \
         node and phase of the pods they create and watch). \"CPU/pod\" is the CPU time (user and system) each process \
         used over that span divided by the pods: unlike the rates it hardly changes when other programs load the \
         machine.\n\n",
        cfg.pods, cfg.clients, cfg.replicas
    );
    out.push_str("| simulated nodes | controllers | nodes registered in | pods created/s | pods bound/s | all bound in | server CPU/pod | controller-manager CPU/pod | simulator CPU/pod | bench CPU/pod | Deployment fully Running in | its last pod created / bound / Running at | server RSS after | controller-manager RSS after |\n");
    out.push_str("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for f in all {
        let (cm_cpu, cm_rss) = match f.apart {
            true => {
                (format!("{:.2} ms", f.cm_cpu_per_pod.as_secs_f64() * 1000.0), format!("{} MiB", f.cm_rss_kb / 1024))
            }
            false => ("(in server)".to_owned(), "(in server)".to_owned()),
        };
        out.push_str(&format!(
            "| {} | {} | {:.1} s | {:.0} | **{:.0}** | {:.1} s | {:.2} ms | {} | {:.2} ms | {:.2} ms | **{:.2} s** | {:.2} / {:.2} / {:.2} s | {} MiB | {} |\n",
            f.nodes,
            if f.apart { "apart" } else { "in the server" },
            f.register.as_secs_f64(),
            f.created_per_s,
            f.bound_per_s,
            f.all_bound.as_secs_f64(),
            f.server_cpu_per_pod.as_secs_f64() * 1000.0,
            cm_cpu,
            f.sim_cpu_per_pod.as_secs_f64() * 1000.0,
            f.bench_cpu_per_pod.as_secs_f64() * 1000.0,
            f.deployment_running.as_secs_f64(),
            f.deployment.created.as_secs_f64(),
            f.deployment.bound.as_secs_f64(),
            f.deployment.running.as_secs_f64(),
            f.rss_kb / 1024,
            cm_rss
        ));
    }
    out.push_str(
        "\nGoals (issue 4): at least 1000 pods/s bound with 5000 simulated nodes (upstream's scheduler_perf floor for \
         SchedulingBasic at 5000 nodes is 680 pods/s on a large machine), and a 1000-replica Deployment fully Running \
         on simulated nodes in under 5 s.\n",
    );
    out
}
