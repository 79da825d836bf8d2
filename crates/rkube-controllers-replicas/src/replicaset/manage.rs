//! Creating missing pods in slow-start batches and deleting surplus ones (upstream's `manageReplicas`),
//! with expectations recorded before any request so that the next sync waits for the watch to catch up.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use super::Controller;
use super::kind::Replicated;
use super::rank::pods_to_delete;
use crate::key::ObjKey;
use rkube_client::api::{is_namespace_terminating, is_not_found};
use rkube_client::events::EventType;
use rkube_client::pods::{controller_of, pod_from_template};
use rkube_client::{Error, Result};

/// At most this many creations or deletions per sync (upstream's `BurstReplicas`).
pub(crate) const BURST_REPLICAS: usize = 500;
/// The first batch of creations (upstream's `SlowStartInitialBatchSize`).
pub(crate) const SLOW_START_INITIAL_BATCH: usize = 1;

/// The batch sizes slow start uses for `count` calls: `initial`, then doubling, never past the total.
pub(crate) fn batch_sizes(count: usize, initial: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut remaining = count;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        sizes.push(batch);
        remaining -= batch;
        batch = remaining.min(batch * 2);
    }
    sizes
}

/// Runs `call` `count` times in growing batches, stopping after the first batch with a failure (a quota or
/// an admission refusal would fail the rest alike). Returns the successes and the first error.
pub(crate) async fn slow_start<F, Fut>(count: usize, initial: usize, call: F) -> (usize, Option<Error>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut successes = 0;
    for size in batch_sizes(count, initial) {
        let results = join_all((0..size).map(|_| call())).await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
    }
    (successes, None)
}

/// The server's message for an API error (what upstream puts in events and conditions), else the error.
pub(crate) fn message(e: &Error) -> String {
    match e {
        Error::Api { source: kube::Error::Api(s), .. } => s.message.clone(),
        other => other.to_string(),
    }
}

fn pod_key(p: &Pod) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

impl<K: Replicated> Controller<K> {
    /// Creates or deletes pods so that `owner` has `spec.replicas` of them; `pods` are the active pods it
    /// controls now.
    pub(super) async fn manage_replicas(&self, owner: &K, key: &ObjKey, pods: &[Arc<Pod>]) -> Result<()> {
        let have = pods.len();
        let want = usize::try_from(owner.desired()).unwrap_or(0);
        if have < want {
            let n = (want - have).min(BURST_REPLICAS);
            self.expectations.expect_creations(key, n);
            let (created, err) = slow_start(n, SLOW_START_INITIAL_BATCH, || self.create_pod(owner, key)).await;
            // The skipped and failed creations will never be observed.
            for _ in created..n {
                self.expectations.creation_observed(key);
            }
            return err.map_or(Ok(()), Err);
        }
        if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            let related = self.related_pods(owner, pods);
            let doomed = pods_to_delete(pods.to_vec(), &related, n, k8s_openapi::jiff::Timestamp::now());
            self.expectations.expect_deletions(key, doomed.iter().map(|p| pod_key(p)));
            let results = join_all(doomed.iter().map(|p| self.delete_pod(owner, key, p))).await;
            return results.into_iter().find(Result::is_err).unwrap_or(Ok(()));
        }
        Ok(())
    }

    async fn create_pod(&self, owner: &K, key: &ObjKey) -> Result<()> {
        let Some(template) = owner.template() else {
            return Err(Error::Invalid(format!("{} {key} has no pod template", K::kind(&()))));
        };
        if template.metadata.as_ref().and_then(|m| m.labels.as_ref()).is_none_or(|l| l.is_empty()) {
            return Err(Error::Invalid("unable to create pods, no labels".to_owned()));
        }
        let pod = pod_from_template(template, owner, &format!("{}-", key.name));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.ns);
        match api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                let msg = format!("Created pod: {}", created.name_any());
                self.recorder.record(owner, EventType::Normal, "SuccessfulCreate", &msg).await;
                Ok(())
            }
            // The namespace is going away with everything in it: nothing to retry.
            Err(e) if is_namespace_terminating(&e) => Ok(()),
            Err(e) => {
                let err = Error::api(format!("creating a pod for {} {key}", K::kind(&())), e);
                let msg = format!("Error creating: {}", message(&err));
                self.recorder.record(owner, EventType::Warning, "FailedCreate", &msg).await;
                Err(err)
            }
        }
    }

    async fn delete_pod(&self, owner: &K, key: &ObjKey, pod: &Pod) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.ns);
        let name = pod.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.recorder.record(owner, EventType::Normal, "SuccessfulDelete", &msg).await;
                Ok(())
            }
            Err(e) => {
                // The watch will not show this deletion (it failed, or happened before).
                self.expectations.deletion_observed(key, &pod_key(pod));
                if is_not_found(&e) {
                    return Ok(());
                }
                let err = Error::api(format!("deleting pod {}/{name}", key.ns), e);
                let msg = format!("Error deleting: {}", message(&err));
                self.recorder.record(owner, EventType::Warning, "FailedDelete", &msg).await;
                Err(err)
            }
        }
    }

    /// The pods of `owner` and of its siblings under the same controller (a Deployment's other
    /// ReplicaSets), which rank deletions by co-location (upstream's `getIndirectlyRelatedPods`).
    fn related_pods(&self, owner: &K, own: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
        let Some(parent) = controller_of(owner.meta()) else { return own.to_vec() };
        let ns = owner.namespace().unwrap_or_default();
        let siblings: Vec<String> = self
            .owners
            .list_namespace(&ns)
            .iter()
            .filter(|o| controller_of(o.meta()).is_some_and(|r| r.uid == parent.uid))
            .filter_map(|o| o.meta().uid.clone())
            .collect();
        self.pods
            .list_namespace(&ns)
            .into_iter()
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn slow_start_doubles() {
        assert_eq!(batch_sizes(0, 1), Vec::<usize>::new());
        assert_eq!(batch_sizes(1, 1), vec![1]);
        assert_eq!(batch_sizes(10, 1), vec![1, 2, 4, 3]);
        assert_eq!(batch_sizes(15, 1), vec![1, 2, 4, 8]);
        assert_eq!(batch_sizes(5, 2), vec![2, 3]);
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start(10, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n >= 2 { Err(Error::Invalid("quota".into())) } else { Ok(()) } }
        })
        .await;
        // Batches 1 and 2 ran (3 calls); the second batch had one failure, so the third never started.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(ok, 2);
        assert!(err.is_some());
        let (ok, err) = slow_start(7, 1, || async { Ok(()) }).await;
        assert_eq!((ok, err.is_none()), (7, true));
    }
}
