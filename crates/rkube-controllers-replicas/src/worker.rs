//! The worker loop every controller here runs: take a key, sync it, then forget its failures and look
//! again when the sync asked to, or retry it after its per-key backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use crate::key::ObjKey;
use rkube_client::queue::WorkQueue;
use rkube_client::{Error, Result};

/// A queue with client-go's default controller backoff (5 ms doubling, capped here at 5 minutes).
pub(crate) fn queue() -> Arc<WorkQueue<ObjKey>> {
    WorkQueue::new(Duration::from_millis(5), Duration::from_secs(300))
}

fn is_conflict(e: &Error) -> bool {
    matches!(e, Error::Api { source, .. } if rkube_client::api::is_conflict(source))
}

/// Runs `workers` workers over `queue` with `sync` until the queue shuts down.
pub(crate) async fn run<F, Fut>(name: &'static str, queue: Arc<WorkQueue<ObjKey>>, workers: usize, sync: F)
where
    F: Fn(ObjKey) -> Fut,
    Fut: Future<Output = Result<Option<Duration>>>,
{
    let one = || async {
        while let Some(key) = queue.get().await {
            match sync(key.clone()).await {
                Ok(again) => {
                    queue.forget(&key);
                    if let Some(after) = again {
                        queue.add_after(key.clone(), after);
                    }
                }
                Err(e) => {
                    if is_conflict(&e) {
                        // A stale cache met a newer write: normal, and the retry reads the newer state.
                        tracing::debug!(controller = name, key = %key, error = %e, "sync conflicted; retrying");
                    } else {
                        tracing::warn!(controller = name, key = %key, error = %e, "sync failed; retrying");
                    }
                    queue.add_rate_limited(key.clone());
                }
            }
            queue.done(&key);
        }
    };
    join_all((0..workers).map(|_| one())).await;
}

/// Merge-patches the status of `name` (gone is fine). The patch carries no resourceVersion, yet the API
/// server may answer a concurrent write with a conflict: a few immediate retries save a requeue.
pub(crate) async fn patch_status<K>(
    api: &kube::Api<K>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = kube::api::PatchParams::default();
    let mut attempts = 0;
    loop {
        match api.patch_status(name, &params, &kube::api::Patch::Merge(patch)).await {
            Ok(_) => return Ok(()),
            Err(e) if rkube_client::api::is_not_found(&e) => return Ok(()),
            Err(e) if rkube_client::api::is_conflict(&e) && attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}
