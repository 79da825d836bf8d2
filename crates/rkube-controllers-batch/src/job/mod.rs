//! The Job controller (upstream's `pkg/controller/job`): runs a Job's pods from its template and tracks
//! them with the `batch.kubernetes.io/job-tracking` finalizer so no finished pod goes uncounted.
//!
//! `mod.rs` wires the informers' events to the queues (which Job a pod event concerns, expectations,
//! orphaned pods that still carry the finalizer); `sync.rs` is one sync of one Job, `manage.rs` creates and
//! deletes pods, `track.rs` counts finished pods and writes the status.

mod backoff;
mod claim;
mod expectations;
mod failure_policy;
pub(crate) mod indexed;
mod manage;
pub(crate) mod pods;
pub(crate) mod status;
mod sync;
mod track;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rkube_client::events::Recorder;
use rkube_client::informer::{Change, Informer};
use rkube_client::pods::controller_of;
use rkube_client::queue::WorkQueue;

use pods::{TRACKING_FINALIZER, has_tracking_finalizer};

/// Upstream's `syncJobBatchPeriod`: pod events are batched this long before a Job syncs.
const BATCH_PERIOD: Duration = Duration::from_secs(1);
/// Workers syncing Jobs (upstream's `--concurrent-job-syncs` default).
const WORKERS: usize = 5;

/// The Job controller's shared state.
pub(crate) struct JobController {
    client: Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    queue: Arc<WorkQueue<String>>,
    orphans: Arc<WorkQueue<String>>,
    exp: expectations::Expectations,
    backoff: backoff::Store,
    written: expectations::Written,
    recorder: Recorder,
}

/// `ns/name`.
pub(crate) fn key_of(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Splits a `ns/name` key.
pub(crate) fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// The Job's key.
fn job_key(job: &Job) -> String {
    key_of(&job.namespace().unwrap_or_default(), &job.name_any())
}

impl JobController {
    /// Builds the controller over the shared caches and registers its handlers on both informers.
    pub(crate) fn new(client: Client, jobs: &Informer<Job>, pods: &Informer<Pod>) -> Arc<Self> {
        let c = Arc::new(JobController {
            recorder: Recorder::new(client.clone(), "job-controller", None),
            client,
            jobs: jobs.clone(),
            pods: pods.clone(),
            queue: WorkQueue::new(Duration::from_secs(1), Duration::from_secs(60)),
            orphans: WorkQueue::new(Duration::from_secs(1), Duration::from_secs(60)),
            exp: expectations::Expectations::default(),
            backoff: backoff::Store::default(),
            written: expectations::Written::default(),
        });
        let w = Arc::downgrade(&c);
        jobs.on_change(move |change| {
            if let (Some(c), Change::Object { old, new }) = (w.upgrade(), change) {
                c.job_changed(old, new);
            }
        });
        let w = Arc::downgrade(&c);
        pods.on_change(move |change| {
            if let (Some(c), Change::Object { old, new }) = (w.upgrade(), change) {
                match (old, new) {
                    (None, Some(p)) => c.pod_added(p),
                    (Some(o), Some(p)) => c.pod_updated(o, p),
                    (Some(p), None) => c.pod_deleted(p, true),
                    (None, None) => {}
                }
            }
        });
        c
    }

    /// Runs the workers until the queues shut down.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let c = self.clone();
            tasks.push(tokio::spawn(async move { c.worker().await }));
        }
        let c = self.clone();
        tasks.push(tokio::spawn(async move { c.orphan_worker().await }));
        futures::future::join_all(tasks).await;
    }

    /// Stops the workers.
    pub(crate) fn shutdown(&self) {
        self.queue.shutdown();
        self.orphans.shutdown();
    }

    async fn worker(&self) {
        while let Some(key) = self.queue.get().await {
            match self.sync(&key).await {
                Ok(()) => self.queue.forget(&key),
                Err(e) => {
                    if matches!(e, rkube_client::Error::Conflict(_)) {
                        tracing::debug!(job = %key, error = %e, "syncing job");
                    } else {
                        tracing::info!(job = %key, error = %e, "syncing job");
                    }
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }

    async fn orphan_worker(&self) {
        while let Some(key) = self.orphans.get().await {
            match self.sync_orphan(&key).await {
                Ok(()) => self.orphans.forget(&key),
                Err(e) => {
                    tracing::info!(pod = %key, error = %e, "removing the job tracking finalizer");
                    self.orphans.add_rate_limited(key.clone());
                }
            }
            self.orphans.done(&key);
        }
    }

    fn enqueue(&self, key: String, delay: Duration) {
        self.queue.add_after(key, delay);
    }

    /// The Job a controller reference points to, if it is in the cache with that uid.
    fn resolve(&self, ns: &str, r: &OwnerReference) -> Option<Arc<Job>> {
        if r.kind != "Job" {
            return None;
        }
        self.jobs.get(ns, &r.name).filter(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
    }

    fn enqueue_orphan(&self, pod: &Pod) {
        self.orphans.add(key_of(&pod.namespace().unwrap_or_default(), &pod.name_any()));
    }

    fn job_changed(&self, old: Option<&Job>, new: Option<&Job>) {
        match (old, new) {
            (_, None) => {
                if let Some(j) = old {
                    self.enqueue(job_key(j), Duration::ZERO);
                    self.cleanup_pod_finalizers(j);
                }
            }
            (None, Some(j)) => self.enqueue(job_key(j), Duration::ZERO),
            (Some(o), Some(j)) => {
                let delay = if o.metadata.generation == j.metadata.generation { BATCH_PERIOD } else { Duration::ZERO };
                self.enqueue(job_key(j), delay);
                if status::finished(j).is_some() {
                    self.cleanup_pod_finalizers(j);
                }
                let ads = |x: &Job| x.spec.as_ref().and_then(|s| s.active_deadline_seconds);
                if let (Some(start), Some(new_ads)) = (j.status.as_ref().and_then(|s| s.start_time.as_ref()), ads(j))
                    && ads(o) != Some(new_ads)
                {
                    let left = start.0 + jiff::SignedDuration::from_secs(new_ads) - jiff::Timestamp::now();
                    self.enqueue(job_key(j), Duration::try_from(left).unwrap_or(Duration::ZERO));
                }
            }
        }
    }

    /// Queues the finalizer removal of every pod of `job` still holding it (the Job is gone or finished).
    fn cleanup_pod_finalizers(&self, job: &Job) {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        for p in self.pods.list_namespace(&job.namespace().unwrap_or_default()) {
            if rkube_client::pods::is_controlled_by(&p.metadata, &uid) && has_tracking_finalizer(&p) {
                self.enqueue_orphan(&p);
            }
        }
    }

    fn pod_added(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.pod_deleted(pod, false);
        }
        let ns = pod.namespace().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(r) => {
                if let Some(job) = self.resolve(&ns, r) {
                    let key = job_key(&job);
                    self.exp.creation_observed(&key);
                    self.enqueue(key, BATCH_PERIOD);
                }
            }
            None if has_tracking_finalizer(pod) => self.enqueue_orphan(pod),
            None => {}
        }
    }

    fn pod_updated(&self, old: &Pod, cur: &Pod) {
        if old.metadata.resource_version == cur.metadata.resource_version {
            return;
        }
        if cur.metadata.deletion_timestamp.is_some() {
            return self.pod_deleted(cur, false);
        }
        let ns = cur.namespace().unwrap_or_default();
        let uid = cur.metadata.uid.clone().unwrap_or_default();
        let finalizer_removed = !has_tracking_finalizer(cur);
        let (old_ref, cur_ref) = (controller_of(&old.metadata), controller_of(&cur.metadata));
        if old_ref != cur_ref
            && let Some(job) = old_ref.and_then(|r| self.resolve(&ns, r))
        {
            let key = job_key(&job);
            if finalizer_removed {
                self.exp.finalizer_removal_observed(&key, &uid);
            }
            self.enqueue(key, BATCH_PERIOD);
        }
        match cur_ref {
            Some(r) => {
                if let Some(job) = self.resolve(&ns, r) {
                    let key = job_key(&job);
                    if finalizer_removed {
                        self.exp.finalizer_removal_observed(&key, &uid);
                    }
                    self.enqueue(key, BATCH_PERIOD);
                }
            }
            None if has_tracking_finalizer(cur) => self.enqueue_orphan(cur),
            None => {}
        }
    }

    /// A pod was deleted (`last`: it is gone) or got its deletion timestamp.
    fn pod_deleted(&self, pod: &Pod, last: bool) {
        let has_finalizer = has_tracking_finalizer(pod);
        let ns = pod.namespace().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata) else {
            if has_finalizer {
                self.enqueue_orphan(pod);
            }
            return;
        };
        let job = self.resolve(&ns, r);
        let Some(job) = job.filter(|j| status::finished(j).is_none()) else {
            if has_finalizer {
                self.enqueue_orphan(pod);
            }
            return;
        };
        let key = job_key(&job);
        self.exp.deletion_observed(&key);
        if last || !has_finalizer {
            self.exp.finalizer_removal_observed(&key, pod.metadata.uid.as_deref().unwrap_or(""));
        }
        self.enqueue(key, BATCH_PERIOD);
    }

    /// Removes the tracking finalizer from a pod no unfinished Job of ours controls.
    async fn sync_orphan(&self, key: &str) -> rkube_client::Result<()> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else { return Ok(()) };
        if let Some(r) = controller_of(&pod.metadata) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                return Ok(());
            }
            if let Some(job) = self.resolve(ns, r)
                && (sync::managed_externally(&job) || status::finished(&job).is_none())
            {
                return Ok(());
            }
        }
        remove_finalizer(&self.client, &pod).await
    }
}

/// Removes the tracking finalizer from `pod` (a pod already gone counts as done).
///
/// A JSON patch that first tests the finalizer's position, so a concurrent change of the list is never
/// clobbered; when the cached copy was stale the pod is read again and the patch retried once.
pub(crate) async fn remove_finalizer(client: &Client, pod: &Pod) -> rkube_client::Result<()> {
    let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let what = || format!("removing the job tracking finalizer of pod {ns}/{name}");
    let mut current = pod.clone();
    for attempt in 0..2 {
        let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
        let Some(i) = finalizers.iter().position(|f| f == TRACKING_FINALIZER) else { return Ok(()) };
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": TRACKING_FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
        ]))
        .map_err(|e| rkube_client::Error::Invalid(format!("{}: {e}", what())))?;
        match api.patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch)).await {
            Ok(_) => return Ok(()),
            Err(e) if rkube_client::api::is_not_found(&e) => return Ok(()),
            Err(e) if attempt == 0 && is_stale(&e) => {
                current = match api.get(&name).await {
                    Ok(p) => p,
                    Err(e) if rkube_client::api::is_not_found(&e) => return Ok(()),
                    Err(e) => return Err(rkube_client::Error::api(what(), e)),
                };
            }
            Err(e) => return Err(rkube_client::Error::api(what(), e)),
        }
    }
    Err(rkube_client::Error::Conflict(what()))
}

/// A failed JSON patch `test` (422) or a conflict: the cached pod was stale.
fn is_stale(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422 || s.code == 409)
}
