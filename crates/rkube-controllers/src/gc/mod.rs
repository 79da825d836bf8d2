//! The garbage collector: deletes objects whose owners (`metadata.ownerReferences`) are all gone, carries
//! out foreground deletions (dependents first, then the owner's `foregroundDeletion` finalizer) and
//! orphaning (owner references stripped, then the `orphan` finalizer), as upstream's.
//!
//! Discovery says which resources to watch (every one that can be listed, watched and deleted; events
//! excepted, as upstream); one metadata-only monitor per resource feeds the dependency graph; workers take
//! the graph's work from a queue and decide on live objects. Discovery runs again when custom resource
//! definitions change, and every few minutes.

mod graph;
mod monitor;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::Client;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::discovery::{Resource, Resources};
use crate::error::Result;
use graph::{Graph, Work};
use monitor::Sink;
use rkube_client::queue::WorkQueue;

/// Concurrent workers (upstream's `--concurrent-gc-syncs` default is 20; these wait on the network only).
const WORKERS: usize = 4;
/// How often discovery runs without a CRD change.
const REDISCOVER_EVERY: Duration = Duration::from_secs(300);
/// How long to wait after a CRD change before discovery (the new resource must be served first).
const CRD_SETTLE: Duration = Duration::from_secs(2);
/// How long workers wait for the monitors' first lists before starting anyway.
const SYNC_WAIT: Duration = Duration::from_secs(60);
/// How long to wait between failed initial discoveries.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);

/// A monitor's name: `apps/v1/deployments`.
pub(crate) fn key(r: &Resource) -> String {
    format!("{}/{}", r.ar.api_version, r.ar.plural)
}

/// Whether the collector watches `r` (upstream: list, watch and delete, events ignored).
fn collectable(r: &Resource) -> bool {
    let events = r.ar.plural == "events" && (r.ar.group.is_empty() || r.ar.group == "events.k8s.io");
    !events && r.supports("list") && r.supports("watch") && r.supports("delete")
}

/// Starts monitors for new resources and stops those of resources no longer served.
fn sync_monitors(
    client: &Client,
    resources: &Resources,
    monitors: &mut HashMap<String, JoinHandle<()>>,
    sink: &Sink,
    synced: &mpsc::UnboundedSender<String>,
) {
    let wanted: HashMap<String, Resource> =
        resources.preferred().into_iter().filter(collectable).map(|r| (key(&r), r)).collect();
    monitors.retain(|k, handle| {
        let keep = wanted.contains_key(k);
        if !keep {
            tracing::info!(resource = %k, "garbage collector stops watching");
            handle.abort();
        }
        keep
    });
    for (k, r) in wanted {
        monitors
            .entry(k)
            .or_insert_with(|| tokio::spawn(monitor::run(client.clone(), r, sink.clone(), synced.clone())));
    }
}

async fn work(ctx: Arc<worker::Ctx>, queue: Arc<WorkQueue<Work>>) {
    while let Some(item) = queue.get().await {
        match worker::process(&ctx, &item).await {
            Ok(()) => queue.forget(&item),
            Err(e) => {
                tracing::debug!(?item, error = %e, "garbage collector: will retry");
                queue.add_rate_limited(item.clone());
            }
        }
        queue.done(&item);
    }
}

/// Runs until `stop` is set.
pub(crate) async fn run(client: Client, mut stop: watch::Receiver<bool>) -> Result<()> {
    let resources = loop {
        match Resources::discover(&client).await {
            Ok(r) => break r,
            Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(DISCOVERY_RETRY) => {}
            _ = crate::stopped(&mut stop) => return Ok(()),
        }
    };
    let graph = Arc::new(Mutex::new(Graph::default()));
    let queue = WorkQueue::new(Duration::from_millis(100), Duration::from_secs(300));
    let sink = Sink { graph: graph.clone(), queue: queue.clone(), rediscover: Arc::new(Notify::new()) };
    let (synced_tx, mut synced_rx) = mpsc::unbounded_channel();
    let mut monitors = HashMap::new();
    sync_monitors(&client, &resources, &mut monitors, &sink, &synced_tx);
    let shared = Arc::new(RwLock::new(Arc::new(resources)));

    // Workers start once the graph holds every object (else orphaning could miss dependents not yet
    // listed); a resource that cannot be listed delays them by SYNC_WAIT at most.
    let expected = monitors.len();
    let first_lists = async {
        for _ in 0..expected {
            if synced_rx.recv().await.is_none() {
                break;
            }
        }
    };
    let stopped_early = tokio::select! {
        _ = tokio::time::timeout(SYNC_WAIT, first_lists) => false,
        _ = crate::stopped(&mut stop) => true,
    };
    let mut workers = Vec::new();
    if !stopped_early {
        let objects = graph.lock().unwrap_or_else(|p| p.into_inner()).len();
        tracing::info!(resources = expected, objects, "garbage collector synced");
        let ctx = Arc::new(worker::Ctx {
            client: client.clone(),
            sink: sink.clone(),
            resources: shared.clone(),
            absent: Mutex::default(),
        });
        workers = (0..WORKERS).map(|_| tokio::spawn(work(ctx.clone(), queue.clone()))).collect();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REDISCOVER_EVERY) => {}
                _ = sink.rediscover.notified() => tokio::time::sleep(CRD_SETTLE).await,
                _ = crate::stopped(&mut stop) => break,
            }
            match Resources::discover(&client).await {
                Ok(r) => {
                    sync_monitors(&client, &r, &mut monitors, &sink, &synced_tx);
                    *shared.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r);
                }
                Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed"),
            }
        }
    }
    queue.shutdown();
    for (_, m) in monitors {
        m.abort();
    }
    for w in workers {
        // A worker in the middle of a request finishes it; one that hangs is dropped with the runtime.
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    Ok(())
}
