//! Starting pods on the node and timing them: a batch of busybox pods created at once by kube-rs, each timed
//! from its create call to the first watch event showing it Running and Ready, and (as upstream's density test
//! reports it) from its `creationTimestamp` to its container's `startedAt`; and deleting them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

use super::host::IMAGE;

/// The namespace the benchmark's pods live in.
pub(crate) const NAMESPACE: &str = "node-bench";
const LABEL: &str = "rkube-bench=node";

/// One pod's start-up, as seen by the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Startup {
    /// From the create call to the first watch event with phase Running.
    pub(crate) running: Duration,
    /// From the create call to the first watch event with condition Ready=True.
    pub(crate) ready: Duration,
    /// From `metadata.creationTimestamp` to the container's `state.running.startedAt` (server clocks, whole
    /// seconds as the API serialises them).
    pub(crate) started_at: Duration,
}

/// A batch's start-ups and the wall time until the last pod was Ready.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) pods: Vec<Startup>,
    pub(crate) all_ready: Duration,
}

/// Creates the namespace and waits for its `default` ServiceAccount (pods are refused until it exists).
pub(crate) async fn namespace(c: &kube::Client) -> anyhow::Result<()> {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NAMESPACE.into());
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {NAMESPACE}"))?;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sas.get_opt("default").await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "no default ServiceAccount in {NAMESPACE} after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"rkube-bench": "node"}},
        "spec": {
            // `sleep` as PID 1 ignores SIGTERM: keep deletion short.
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]}]
        }
    }))?)
}

fn is_running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn is_ready(p: &Pod) -> bool {
    let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `creationTimestamp` to the first container's `startedAt`, if both are known.
fn started_at(p: &Pod) -> Option<Duration> {
    let created = p.metadata.creation_timestamp.as_ref()?.0.as_millisecond();
    let status = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let started = status.state.as_ref()?.running.as_ref()?.started_at.as_ref()?.0.as_millisecond();
    Some(Duration::from_millis(u64::try_from(started - created).unwrap_or(0)))
}

/// When each pod was first seen Running and Ready, and its last state.
#[derive(Default)]
struct Seen {
    running: HashMap<String, Instant>,
    ready: HashMap<String, Instant>,
    last: HashMap<String, Pod>,
}

/// Creates `names` at once and waits (up to `limit`) until every one is Ready; times each.
pub(crate) async fn start_batch(c: &kube::Client, names: &[String], limit: Duration) -> anyhow::Result<Batch> {
    let api: Api<Pod> = Api::namespaced(c.clone(), NAMESPACE);
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default().labels(LABEL)).boxed();
    // The watch must be in place before the first create, or an early Running could be missed.
    loop {
        match stream.try_next().await.context("starting the pod watch")? {
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => anyhow::bail!("the pod watch ended before it started"),
        }
    }
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let creates = names.iter().cloned().map(|name| {
        let (api, created) = (api.clone(), created.clone());
        async move {
            let p = pod(&name)?;
            let at = Instant::now();
            api.create(&PostParams::default(), &p).await.with_context(|| format!("creating pod {name}"))?;
            created.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(name, at);
            anyhow::Ok(())
        }
    });
    let creates = tokio::spawn(futures::future::try_join_all(creates));
    let mut seen = Seen::default();
    let deadline = Instant::now() + limit;
    let mut last_report = Instant::now();
    while seen.ready.len() < names.len() {
        let next = tokio::time::timeout_at(deadline.into(), stream.try_next()).await.with_context(|| {
            format!("only {} of {} pods Ready after {} s", seen.ready.len(), names.len(), limit.as_secs())
        })?;
        let event = next.context("watching pods")?.context("the pod watch ended")?;
        let now = Instant::now();
        if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = event {
            let name = p.metadata.name.clone().unwrap_or_default();
            if is_running(&p) {
                seen.running.entry(name.clone()).or_insert(now);
            }
            if is_ready(&p) {
                seen.ready.entry(name.clone()).or_insert(now);
            }
            seen.last.insert(name, p);
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("[node bench]   {}/{} pods Running, {} Ready", seen.running.len(), names.len(), seen.ready.len());
            last_report = Instant::now();
        }
    }
    let all_ready = start.elapsed();
    creates.await.context("the create task panicked")??;
    let created = created.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let mut batch = Batch { pods: Vec::new(), all_ready };
    for name in names {
        let since = |at: Option<&Instant>| at.zip(created.get(name)).map(|(at, c)| at.saturating_duration_since(*c));
        let ready = since(seen.ready.get(name)).with_context(|| format!("pod {name} has no create or Ready time"))?;
        batch.pods.push(Startup {
            // Running and Ready come in one status write; a pod first seen Ready was Running by then.
            running: since(seen.running.get(name)).unwrap_or(ready),
            ready,
            started_at: seen.last.get(name).and_then(started_at).unwrap_or_default(),
        });
    }
    Ok(batch)
}

/// Deletes every benchmark pod and waits (up to `limit`) until the API has none left.
pub(crate) async fn delete_all(c: &kube::Client, limit: Duration) -> anyhow::Result<Duration> {
    let api: Api<Pod> = Api::namespaced(c.clone(), NAMESPACE);
    let start = Instant::now();
    let lp = ListParams::default().labels(LABEL);
    api.delete_collection(&DeleteParams::default(), &lp).await.context("deleting the pods")?;
    loop {
        let left = api.list(&lp).await.context("listing the pods")?.items.len();
        if left == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < limit, "{left} pods still there {} s after their deletion", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pod names `prefix-0` .. `prefix-(n-1)`.
pub(crate) fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}
