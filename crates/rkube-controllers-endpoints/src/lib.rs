//! Endpoints and EndpointSlice controllers, as upstream kube-controller-manager's: the Endpoints
//! controller (`endpoints.rs`), the EndpointSlice controller (`slices/`) and EndpointSlice mirroring
//! (`mirroring/`), sharing one set of informers (`informers.rs`). The pure parts — which pods are
//! published and how (`model.rs`, `subsets.rs`, `slices/desired.rs`), how slices are packed with the fewest
//! writes (`slices/reconcile.rs`, `mirroring/reconcile.rs`) — take objects and return objects.
//! Pod-driven syncs are batched per service (`batch.rs`); every failed sync is retried with per-key backoff.

mod batch;
mod endpoints;
mod error;
mod informers;
mod mirroring;
mod model;
mod slices;
mod subsets;
mod trackers;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};
use rkube_client::queue::WorkQueue;
use tokio::sync::watch;

use batch::Batched;
use error::SyncResult;
use informers::{Cache, Change};
use trackers::Key;

/// How long pod changes are collected before a service is synced (upstream's
/// `--endpoint-updates-batch-period`): a burst of pod updates makes one write per service.
const BATCH_PERIOD: Duration = Duration::from_millis(500);
/// Workers per controller (upstream runs 5).
const WORKERS: usize = 4;

/// The informer caches the controllers read.
pub(crate) struct Caches {
    pub(crate) services: Arc<Cache<Service>>,
    pub(crate) pods: Arc<Cache<Pod>>,
    pub(crate) nodes: Arc<Cache<Node>>,
    pub(crate) endpoints: Arc<Cache<Endpoints>>,
    pub(crate) slices: Arc<Cache<EndpointSlice>>,
}

/// The services (as keys) a pod change concerns.
pub(crate) fn services_for_pod(caches: &Caches, c: &Change<Pod>) -> BTreeSet<Key> {
    let (old, new) = match c {
        Change::Added(p) => (None, Some(p.as_ref())),
        Change::Updated(o, n) => (Some(o.as_ref()), Some(n.as_ref())),
        Change::Deleted(p) => (Some(p.as_ref()), None),
    };
    let Some(ns) = new.or(old).and_then(|p| p.metadata.namespace.clone()) else { return BTreeSet::new() };
    let services = caches.services.list(&ns);
    let names = model::services_to_update(services.iter().map(|s| s.as_ref()), old, new);
    names.into_iter().map(|n| (ns.clone(), n)).collect()
}

fn new_queue() -> Arc<WorkQueue<Key>> {
    WorkQueue::new(Duration::from_millis(20), Duration::from_secs(300))
}

/// Runs the Endpoints, EndpointSlice and EndpointSlice mirroring controllers until `stop` is set.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let caches = Arc::new(Caches {
        services: Cache::new(),
        pods: Cache::new(),
        nodes: Cache::new(),
        endpoints: Cache::new(),
        slices: Cache::new(),
    });
    let eps =
        Arc::new(endpoints::Controller::new(client.clone(), caches.clone(), Batched::new(new_queue(), BATCH_PERIOD)));
    let sls =
        Arc::new(slices::Controller::new(client.clone(), caches.clone(), Batched::new(new_queue(), BATCH_PERIOD)));
    let mir = Arc::new(mirroring::Controller::new(client.clone(), caches.clone(), new_queue()));

    let mut tasks = tokio::task::JoinSet::new();
    {
        let (e, s, m) = (eps.clone(), sls.clone(), mir.clone());
        tasks.spawn(informers::run("services", Api::all(client.clone()), caches.services.clone(), move |c| {
            e.on_service(&c);
            s.on_service(&c);
            m.on_service(&c);
        }));
    }
    {
        let (e, s) = (eps.clone(), sls.clone());
        tasks.spawn(informers::run("pods", Api::all(client.clone()), caches.pods.clone(), move |c| {
            e.on_pod(&c);
            s.on_pod(&c);
        }));
    }
    {
        let s = sls.clone();
        tasks.spawn(informers::run("nodes", Api::all(client.clone()), caches.nodes.clone(), move |c| s.on_node(&c)));
    }
    {
        let (e, m) = (eps.clone(), mir.clone());
        tasks.spawn(informers::run("endpoints", Api::all(client.clone()), caches.endpoints.clone(), move |c| {
            e.on_endpoints(&c);
            m.on_endpoints(&c);
        }));
    }
    {
        let (s, m) = (sls.clone(), mir.clone());
        tasks.spawn(informers::run("endpointslices", Api::all(client.clone()), caches.slices.clone(), move |c| {
            s.on_slice(&c);
            m.on_slice(&c);
        }));
    }

    let c = caches.clone();
    let (eq, sq, mq) = (eps.queue.queue().clone(), sls.queue.queue().clone(), mir.queue.clone());
    let work = async move {
        tokio::join!(c.services.synced(), c.pods.synced(), c.nodes.synced(), c.endpoints.synced(), c.slices.synced());
        eps.check_leftovers();
        for _ in 0..WORKERS {
            let e = eps.clone();
            tasks.spawn(worker("endpoint", eps.queue.queue().clone(), move |k| {
                let e = e.clone();
                async move { e.sync(&k).await }
            }));
            let s = sls.clone();
            tasks.spawn(worker("endpointslice", sls.queue.queue().clone(), move |k| {
                let s = s.clone();
                async move { s.sync(&k).await }
            }));
            let m = mir.clone();
            tasks.spawn(worker("endpointslicemirroring", mir.queue.clone(), move |k| {
                let m = m.clone();
                async move { m.sync(&k).await }
            }));
        }
        // Informers and workers run for ever; one ending is a bug.
        let _ = tasks.join_next().await;
    };
    let result = rkube_client::until_stopped("endpoints controllers", work, stop).await;
    for q in [eq, sq, mq] {
        q.shutdown();
    }
    result
}

/// Processes `queue` with `sync` until the queue shuts down; failures come back after their backoff.
async fn worker<F, Fut>(name: &'static str, queue: Arc<WorkQueue<Key>>, sync: F)
where
    F: Fn(Key) -> Fut,
    Fut: Future<Output = SyncResult>,
{
    while let Some(key) = queue.get().await {
        match sync(key.clone()).await {
            Ok(()) => queue.forget(&key),
            Err(e) => {
                tracing::info!(controller = name, service = %format!("{}/{}", key.0, key.1), error = %e, "sync failed; retrying");
                queue.add_rate_limited(key.clone());
            }
        }
        queue.done(&key);
    }
}
