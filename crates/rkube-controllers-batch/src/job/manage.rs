//! Creating and deleting a Job's pods (upstream's `manageJob`, `deleteJobPods`, `deleteActivePods`): as many
//! active pods as parallelism and the remaining completions allow, after the failure backoff, created in
//! slow-start batches; surplus, duplicate-index or suspended pods deleted.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_client::Error;
use rkube_client::events::EventType;
use rkube_client::pods::is_ready;

use super::indexed::{duplicates_for_removal, first_pending};
use super::pods::{deletion_order, new_pod, only_replace_failed};
use super::sync::Ctx;
use super::{BATCH_PERIOD, JobController, remove_finalizer};

/// Upstream's `MaxPodCreateDeletePerSync`.
const MAX_PER_SYNC: usize = 500;

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Upstream's `activePodsForRemoval`: duplicate or invalid indexes first, then the least advanced pods.
fn pods_for_removal<'a>(ctx: &Ctx<'a>, at_least: usize) -> Vec<&'a Pod> {
    let (mut rm, mut left) = if ctx.indexed() {
        duplicates_for_removal(&ctx.active_pods, ctx.completions().unwrap_or(0))
    } else {
        (Vec::new(), ctx.active_pods.clone())
    };
    if rm.len() < at_least {
        left.sort_by(|a, b| deletion_order(a, b));
        rm.extend(left.into_iter().take(at_least - rm.len()));
    }
    rm
}

impl JobController {
    /// Brings the number of active pods to what the Job wants; returns the new active count and the first
    /// error.
    pub(super) async fn manage(&self, ctx: &mut Ctx<'_>) -> (i32, Option<Error>) {
        let mut active = count(ctx.active_pods.len());
        let spec = ctx.job.spec.clone().unwrap_or_default();
        if spec.suspend == Some(true) {
            let rm = pods_for_removal(ctx, ctx.active_pods.len());
            return self.scale_down(ctx, rm, active).await;
        }
        let parallelism = spec.parallelism.unwrap_or(1);
        let want = match ctx.completions() {
            None if ctx.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (c - ctx.succeeded).min(parallelism).max(0),
        };
        let at_least = usize::try_from(active - want).unwrap_or(0);
        let mut rm = pods_for_removal(ctx, at_least);
        rm.truncate(MAX_PER_SYNC);
        if !rm.is_empty() {
            // Deleting takes precedence over creating in one sync.
            return self.scale_down(ctx, rm, active).await;
        }
        let terminating = if only_replace_failed(&ctx.job) { ctx.terminating } else { 0 };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, None);
        }
        let wait = ctx.record.remaining(ctx.now);
        if !wait.is_zero() {
            self.enqueue(ctx.key.clone(), wait.max(BATCH_PERIOD));
            return (active, None);
        }
        let mut n = usize::try_from(diff).unwrap_or(0).min(MAX_PER_SYNC);
        let mut indexes: Vec<Option<i32>> = vec![None; n];
        if ctx.indexed() {
            let completions = ctx.completions().unwrap_or(0);
            indexes =
                first_pending(&ctx.succeeded_ix, &ctx.active_pods, n, completions).into_iter().map(Some).collect();
            n = indexes.len();
        }
        self.exp.expect_creations(&ctx.key, n);
        let (created, err) = self.create_pods(&ctx.job, &ctx.key, &indexes).await;
        active += count(created);
        (active, err)
    }

    async fn scale_down(&self, ctx: &mut Ctx<'_>, rm: Vec<&Pod>, active: i32) -> (i32, Option<Error>) {
        self.exp.expect_deletions(&ctx.key, rm.len());
        let (ready, removed, err) = self.delete_job_pods(&ctx.job, &ctx.key, &rm).await;
        ctx.terminating += removed;
        ctx.ready -= ready;
        (active - removed, err)
    }

    /// Creates pods in slow-start batches (1, 2, 4, …), stopping after a batch with failures; returns how
    /// many were created.
    async fn create_pods(&self, job: &Job, key: &str, indexes: &[Option<i32>]) -> (usize, Option<Error>) {
        let ns = job.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut created = 0;
        let mut first_err = None;
        let mut rest = indexes;
        let mut batch = 1;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            rest = later;
            let results = futures::future::join_all(now.iter().map(|ix| {
                let pod = new_pod(job, *ix);
                let api = api.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            }))
            .await;
            let mut failed = false;
            for r in results {
                match r {
                    Ok(p) => {
                        created += 1;
                        let msg = format!("Created pod: {}", p.name_any());
                        self.recorder.record(job, EventType::Normal, "SuccessfulCreate", &msg).await;
                    }
                    Err(e) => {
                        self.exp.creation_observed(key);
                        if rkube_client::api::is_namespace_terminating(&e) {
                            continue;
                        }
                        failed = true;
                        let msg = format!("Error creating: {e}");
                        self.recorder.record(job, EventType::Warning, "FailedCreate", &msg).await;
                        first_err.get_or_insert(Error::api(format!("creating a pod for job {key}"), e));
                    }
                }
            }
            if failed {
                for _ in rest {
                    self.exp.creation_observed(key);
                }
                break;
            }
            batch *= 2;
        }
        (created, first_err)
    }

    /// Deletes pods after removing their tracking finalizer, so they are not counted (suspend, surplus).
    /// Returns (ready pods deleted, pods deleted, first error).
    async fn delete_job_pods(&self, job: &Job, key: &str, pods: &[&Pod]) -> (i32, i32, Option<Error>) {
        let results = futures::future::join_all(pods.iter().map(|p| async move {
            remove_finalizer(&self.client, p).await?;
            self.delete_pod(job, p).await
        }))
        .await;
        self.tally(key, pods, results)
    }

    /// Deletes the active pods of a finishing Job, keeping their finalizers so they are counted.
    pub(super) async fn delete_active_pods(&self, job: &Job, pods: &[&Pod]) -> (i32, i32, Option<Error>) {
        let results = futures::future::join_all(pods.iter().map(|p| self.delete_pod(job, p))).await;
        let mut err = None;
        let (mut ready, mut deleted) = (0, 0);
        for (p, r) in pods.iter().zip(results) {
            match r {
                Ok(()) => deleted += 1,
                Err(e) => {
                    err.get_or_insert(e);
                    continue;
                }
            }
            if is_ready(p) {
                ready += 1;
            }
        }
        (ready, deleted, err)
    }

    fn tally(&self, key: &str, pods: &[&Pod], results: Vec<rkube_client::Result<()>>) -> (i32, i32, Option<Error>) {
        let mut err = None;
        let (mut ready, mut deleted) = (0, 0);
        for (p, r) in pods.iter().zip(results) {
            match r {
                Ok(()) => {
                    deleted += 1;
                    if is_ready(p) {
                        ready += 1;
                    }
                }
                Err(e) => {
                    // The informer will not see this deletion.
                    self.exp.deletion_observed(key);
                    err.get_or_insert(e);
                }
            }
        }
        (ready, deleted, err)
    }

    /// Deletes one pod with an event (a pod already gone counts as deleted).
    async fn delete_pod(&self, job: &Job, pod: &Pod) -> rkube_client::Result<()> {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.recorder.record(job, EventType::Normal, "SuccessfulDelete", &msg).await;
                Ok(())
            }
            Err(e) if rkube_client::api::is_not_found(&e) => Ok(()),
            Err(e) => {
                let msg = format!("Error deleting: {e}");
                self.recorder.record(job, EventType::Warning, "FailedDelete", &msg).await;
                Err(Error::api(format!("deleting pod {ns}/{name}"), e))
            }
        }
    }
}
