//! Endpoints and EndpointSlice controllers, as upstream kube-controller-manager's: the Endpoints
//! controller (`endpoints.rs`), the EndpointSlice controller (`slices/`) and EndpointSlice mirroring
//! (`mirroring/`), reading the process's shared informers (`informers.rs`). The pure parts — which pods are
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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use rkube_client::informer::SharedInformers;
use rkube_client::queue::WorkQueue;
use tokio::sync::watch;

use batch::Batched;
use error::SyncResult;
use informers::Caches;
use trackers::Key;

/// How long pod changes are collected before a service is synced (upstream's
/// `--endpoint-updates-batch-period`): a burst of pod updates makes one write per service.
const BATCH_PERIOD: Duration = Duration::from_millis(500);
/// Workers per controller (upstream runs 5).
const WORKERS: usize = 4;

fn new_queue() -> Arc<WorkQueue<Key>> {
    WorkQueue::new(Duration::from_millis(20), Duration::from_secs(300))
}

/// Runs the Endpoints, EndpointSlice and EndpointSlice mirroring controllers until `stop` is set, with
/// informers of their own.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), stop).await
}

/// Runs the Endpoints, EndpointSlice and EndpointSlice mirroring controllers until `stop` is set, reading
/// services, pods, nodes, Endpoints and EndpointSlices from the process's shared `informers`.
pub async fn run_shared(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let caches = Arc::new(Caches::new(&informers));
    let eps =
        Arc::new(endpoints::Controller::new(client.clone(), caches.clone(), Batched::new(new_queue(), BATCH_PERIOD)));
    let sls =
        Arc::new(slices::Controller::new(client.clone(), caches.clone(), Batched::new(new_queue(), BATCH_PERIOD)));
    let mir = Arc::new(mirroring::Controller::new(client, caches.clone(), new_queue()));
    informers::watch(&caches, &eps, &sls, &mir);

    let (eq, sq, mq) = (eps.queue.queue().clone(), sls.queue.queue().clone(), mir.queue.clone());
    let work = async move {
        caches.synced().await;
        eps.check_leftovers();
        let mut tasks = tokio::task::JoinSet::new();
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
        // Workers run until their queue shuts down; one ending earlier is a bug.
        let _ = tasks.join_next().await;
    };
    let result = rkube_client::until_stopped("endpoints controllers", work, stop).await;
    // The handlers stay registered on the shared informers; a shut-down queue ignores what they add.
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
