//! One sync of one Job (upstream's `syncJob`): count its pods, decide whether it has failed (backoff limit,
//! active deadline) or met its completions, create or delete pods, then hand over to `track.rs` to count
//! finished pods and write the status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use rkube_client::events::EventType;
use rkube_client::pods::{is_active, is_ready, phase};

use super::backoff::Record;
use super::failure_policy;
use super::indexed::{Intervals, match_success_policy, succeeded_indexes};
use super::pods::{completion_index, has_tracking_finalizer, is_failed, is_terminating};
use super::status::{
    self, BACKOFF_LIMIT_EXCEEDED, COMPLETIONS_REACHED, DEADLINE_EXCEEDED, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET,
    SUSPENDED, Uncounted, condition, find_true,
};
use super::{JobController, split_key};

/// When to look again at a Job whose cached copy predates our last write (in case no event comes).
const STALE_RETRY: Duration = Duration::from_millis(200);

/// The value of `spec.managedBy` that means this controller.
const OUR_MANAGER: &str = "kubernetes.io/job-controller";

/// Whether another controller manages the Job (`spec.managedBy`).
pub(crate) fn managed_externally(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.managed_by.as_deref()).is_some_and(|m| m != OUR_MANAGER)
}

/// What one sync knows about a Job and its pods.
pub(super) struct Ctx<'a> {
    pub(super) key: String,
    pub(super) job: Job,
    pub(super) pods: Vec<&'a Pod>,
    pub(super) active_pods: Vec<&'a Pod>,
    /// The condition the Job is about to reach (FailureTarget/SuccessCriteriaMet, then Failed/Complete).
    pub(super) finished: Option<JobCondition>,
    pub(super) succeeded: i32,
    pub(super) prev_succeeded_ix: Intervals,
    pub(super) succeeded_ix: Intervals,
    pub(super) record: Record,
    pub(super) expected_rm: HashSet<String>,
    pub(super) uncounted: Uncounted,
    pub(super) terminating: i32,
    pub(super) ready: i32,
    pub(super) now: Timestamp,
}

impl Ctx<'_> {
    pub(super) fn indexed(&self) -> bool {
        self.job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
    }

    pub(super) fn completions(&self) -> Option<i32> {
        self.job.spec.as_ref().and_then(|s| s.completions)
    }
}

fn uid(p: &Pod) -> &str {
    p.metadata.uid.as_deref().unwrap_or("")
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl JobController {
    /// Syncs the Job `key`.
    pub(super) async fn sync(&self, key: &str) -> rkube_client::Result<()> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.jobs.get(ns, name) else {
            self.exp.forget(key);
            self.backoff.remove(key);
            self.written.forget(key);
            return Ok(());
        };
        if self.written.is_stale(key, &shared) {
            // Our last status write is not in the cache yet; its watch event queues the Job again.
            self.enqueue(key.to_owned(), STALE_RETRY);
            return Ok(());
        }
        if managed_externally(&shared) {
            return Ok(());
        }
        if status::finished(&shared).is_some() {
            self.backoff.remove(key);
            return Ok(());
        }
        let mode = shared.spec.as_ref().and_then(|s| s.completion_mode.clone());
        if !matches!(mode.as_deref(), None | Some("NonIndexed") | Some("Indexed")) {
            let msg = "Skipped Job sync because completion mode is unknown";
            self.recorder.record(&*shared, EventType::Warning, "UnknownCompletionMode", msg).await;
            return Ok(());
        }
        let mut job = (*shared).clone();
        let now = Timestamp::now();
        let st = job.status.get_or_insert_with(Default::default);
        st.uncounted_terminated_pods.get_or_insert_with(Default::default);
        let uncounted = Uncounted::of(st);
        let satisfied = self.exp.satisfied(key);
        let owned: Vec<Arc<Pod>> = self.claim_pods(&job).await?;
        let pods: Vec<&Pod> = owned.iter().map(|p| &**p).collect();
        let active_pods: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
        let expected_rm = self.exp.expected_finalizer_removals(key);
        let spec = job.spec.clone().unwrap_or_default();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let completions = spec.completions;
        let countable = |p: &Pod| {
            has_tracking_finalizer(p)
                && !expected_rm.contains(uid(p))
                && (!indexed || completion_index(p).is_some_and(|i| i < completions.unwrap_or(0)))
        };
        let new_succeeded: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| countable(p) && !uncounted.succeeded.contains(uid(p)) && phase(p) == "Succeeded")
            .collect();
        let new_failed: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| countable(p) && !uncounted.failed.contains(uid(p)) && is_failed(p, &job))
            .collect();
        let st = job.status.get_or_insert_with(Default::default);
        let mut succeeded = st.succeeded.unwrap_or(0) + count(new_succeeded.len()) + count(uncounted.succeeded.len());
        // Failures a pod failure policy ignores do not count against the backoff limit.
        let new_counted = new_failed.iter().filter(|p| failure_policy::judge(&job, p).count).count();
        let st = job.status.get_or_insert_with(Default::default);
        let failed = st.failed.unwrap_or(0) + count(new_counted) + count(uncounted.failed.len());
        let suspended = spec.suspend == Some(true);
        if st.start_time.is_none() && !suspended {
            st.start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        }
        let record = self.backoff.get(key).with_finished(&new_succeeded, &new_failed);

        let mut finished = find_true(&job, SUCCESS_CRITERIA_MET).cloned();
        if finished.is_none()
            && let Some(ft) = find_true(&job, FAILURE_TARGET)
        {
            let rm = (ft.reason.as_deref().unwrap_or(""), ft.message.as_deref().unwrap_or(""));
            finished = Some(condition(FAILED, "True", rm, now));
        }
        if finished.is_none()
            && let Some(msg) = failure_policy::fail_job_message(&job, &pods)
        {
            // Recorded first as FailureTarget, before the finalizers that let the pods go are removed.
            finished = Some(condition(FAILURE_TARGET, "True", ("PodFailurePolicy", &msg), now));
        }
        if finished.is_none() {
            let start = job.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
            if failed > spec.backoff_limit.unwrap_or(6) || status::past_backoff_limit_on_failure(&job, &pods) {
                finished = Some(condition(FAILURE_TARGET, "True", BACKOFF_LIMIT_EXCEEDED, now));
            } else if let (Some(ads), Some(start), false) = (spec.active_deadline_seconds, start, suspended) {
                let deadline = start + SignedDuration::from_secs(ads);
                if now >= deadline {
                    finished = Some(condition(FAILURE_TARGET, "True", DEADLINE_EXCEEDED, now));
                } else {
                    let left = Duration::try_from(deadline.duration_since(now)).unwrap_or(Duration::ZERO);
                    self.enqueue(key.to_owned(), left);
                }
            }
        }
        let (mut prev_succeeded_ix, mut succeeded_ix) = (Intervals::default(), Intervals::default());
        if indexed {
            let done = job.status.as_ref().and_then(|s| s.completed_indexes.clone()).unwrap_or_default();
            (prev_succeeded_ix, succeeded_ix) = succeeded_indexes(&done, completions.unwrap_or(0), &pods);
            succeeded = succeeded_ix.total();
            if finished.is_none()
                && let Some(msg) =
                    match_success_policy(spec.success_policy.as_ref(), completions.unwrap_or(0), &succeeded_ix)
            {
                finished = Some(condition(SUCCESS_CRITERIA_MET, "True", ("SuccessPolicy", &msg), now));
            }
        }
        let mut ctx = Ctx {
            key: key.to_owned(),
            ready: count(active_pods.iter().filter(|p| is_ready(p)).count()),
            terminating: count(pods.iter().filter(|p| is_terminating(p)).count()),
            job,
            pods,
            active_pods,
            finished,
            succeeded,
            prev_succeeded_ix,
            succeeded_ix,
            record,
            expected_rm,
            uncounted,
            now,
        };
        let mut active = count(ctx.active_pods.len());
        let mut suspend_changed = false;
        let mut manage_err = None;
        if ctx.finished.is_some() {
            let (deleted_ready, deleted, err) = self.delete_active_pods(&ctx.job, &ctx.active_pods).await;
            if deleted != active || !satisfied {
                // Pods may remain (or not be in the cache yet): not finished until they are gone.
                ctx.finished = None;
            }
            active -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut managed = false;
            if satisfied && ctx.job.metadata.deletion_timestamp.is_none() {
                let (a, err) = self.manage(&mut ctx).await;
                active = a;
                manage_err = err;
                managed = true;
            }
            let complete = match completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            if complete {
                ctx.finished = Some(condition(SUCCESS_CRITERIA_MET, "True", COMPLETIONS_REACHED, now));
            } else if managed {
                suspend_changed = self.update_suspended(&mut ctx.job, now).await;
            }
        }
        let st = ctx.job.status.get_or_insert_with(Default::default);
        let needs_update = suspend_changed
            || active != st.active.unwrap_or(0)
            || Some(ctx.ready) != st.ready
            || Some(ctx.terminating) != st.terminating;
        st.active = Some(active).filter(|a| *a != 0);
        st.ready = Some(ctx.ready);
        st.terminating = Some(ctx.terminating);
        self.track_and_remove_finalizers(&mut ctx, needs_update).await?;
        manage_err.map_or(Ok(()), Err)
    }

    /// Keeps the `Suspended` condition in step with `spec.suspend`; returns whether it changed.
    async fn update_suspended(&self, job: &mut Job, now: Timestamp) -> bool {
        let suspend = status::suspended(job);
        let st = job.status.get_or_insert_with(Default::default);
        let conds = st.conditions.get_or_insert_with(Vec::new);
        let changed = if suspend {
            status::ensure(conds, SUSPENDED, "True", ("JobSuspended", "Job suspended"), now)
        } else {
            status::ensure(conds, SUSPENDED, "False", ("JobResumed", "Job resumed"), now)
        };
        if conds.is_empty() {
            st.conditions = None;
        }
        if changed && !suspend {
            // The active deadline counts from the resume, as for a Job created suspended.
            st.start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        }
        if changed {
            let (reason, msg) = if suspend { ("Suspended", "Job suspended") } else { ("Resumed", "Job resumed") };
            self.recorder.record(&*job, EventType::Normal, reason, msg).await;
        }
        changed
    }
}

/// The Job's name, for messages.
pub(super) fn job_name(job: &Job) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}
