//! Counting finished pods without losing any (upstream's `trackJobStatusAndRemoveFinalizers`): a finished
//! pod's UID goes into `status.uncountedTerminatedPods` (written first), then its tracking finalizer is
//! removed, then the UID moves into `succeeded`/`failed`. The terminal condition is added only when nothing
//! is left uncounted or terminating, after the interim FailureTarget/SuccessCriteriaMet one.

use std::collections::HashSet;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use rkube_client::Error;
use rkube_client::events::EventType;
use rkube_client::pods::phase;

use super::JobController;
use super::failure_policy;
use super::pods::{completion_index, has_tracking_finalizer, is_failed};
use super::status::{
    self, COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, clean_uncounted, condition, push_uncounted,
    uncounted_len,
};
use super::sync::{Ctx, job_name};

/// Upstream's `MaxUncountedPods`: keeps `uncountedTerminatedPods` small; the rest waits for the next sync.
const MAX_UNCOUNTED: usize = 500;

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn reason_message(c: &JobCondition) -> (&str, &str) {
    (c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
}

impl JobController {
    /// Counts finished pods, removes their finalizers and writes the status when it changed.
    pub(super) async fn track_and_remove_finalizers(
        &self,
        ctx: &mut Ctx<'_>,
        mut needs_flush: bool,
    ) -> rkube_client::Result<()> {
        let indexed = ctx.indexed();
        let completions = ctx.completions().unwrap_or(0);
        let mut pods = ctx.pods.clone();
        if indexed {
            pods.sort_by_key(|p| completion_index(p).map_or(-1, i64::from));
        }
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|p| has_tracking_finalizer(p) && !ctx.expected_rm.contains(&uid(p)))
            .map(|p| uid(p))
            .collect();
        let st = ctx.job.status.get_or_insert_with(Default::default);
        needs_flush |= clean_uncounted(st, &with_finalizer);
        let mut to_remove: Vec<&Pod> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut reached_max = false;
        let deleting = ctx.job.metadata.deletion_timestamp.is_some();
        for p in &pods {
            let id = uid(p);
            if !has_tracking_finalizer(p) || ctx.expected_rm.contains(&id) {
                continue;
            }
            let failed = is_failed(p, &ctx.job);
            let counts = failure_policy::judge(&ctx.job, p).count;
            if !(deleting || ctx.finished.is_some() || phase(p) == "Succeeded" || failed) {
                continue;
            }
            to_remove.push(p);
            let st = ctx.job.status.get_or_insert_with(Default::default);
            let failing_job = ctx.finished.as_ref().is_some_and(|c| c.type_ != SUCCESS_CRITERIA_MET);
            if phase(p) == "Succeeded" && !ctx.uncounted.failed.contains(&id) {
                if indexed {
                    if let Some(ix) = completion_index(p).filter(|ix| *ix < completions)
                        && !ctx.prev_succeeded_ix.has(ix)
                    {
                        new_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !ctx.uncounted.succeeded.contains(&id) {
                    push_uncounted(st, true, &id);
                    needs_flush = true;
                }
            } else if (failed || failing_job)
                && !ctx.uncounted.failed.contains(&id)
                && (!indexed || completion_index(p).is_some_and(|ix| ix < completions))
                && counts
            {
                push_uncounted(st, false, &id);
                needs_flush = true;
            }
            if new_indexes.len() + uncounted_len(st) >= MAX_UNCOUNTED {
                reached_max = true;
                break;
            }
        }
        if indexed {
            new_indexes.sort_unstable();
            ctx.succeeded_ix = ctx.succeeded_ix.with_indexes(&new_indexes);
            let text = ctx.succeeded_ix.to_string();
            let st = ctx.job.status.get_or_insert_with(Default::default);
            if text != st.completed_indexes.clone().unwrap_or_default() {
                needs_flush = true;
            }
            st.succeeded = Some(ctx.succeeded_ix.total());
            st.completed_indexes = Some(text).filter(|t| !t.is_empty());
        }
        let now = ctx.now;
        let conds = |job: &mut Job| {
            job.status.get_or_insert_with(Default::default).conditions.get_or_insert_with(Vec::new).clone()
        };
        if let Some(c) = ctx.finished.clone().filter(|c| c.type_ == FAILURE_TARGET) {
            let mut list = conds(&mut ctx.job);
            list.push(c.clone());
            ctx.job.status.get_or_insert_with(Default::default).conditions = Some(list);
            needs_flush = true;
            ctx.finished = Some(condition(FAILED, "True", reason_message(&c), now));
        }
        if let Some(c) = ctx.finished.clone().filter(|c| c.type_ == SUCCESS_CRITERIA_MET) {
            if status::find_true(&ctx.job, SUCCESS_CRITERIA_MET).is_none() {
                let mut list = conds(&mut ctx.job);
                list.push(c.clone());
                ctx.job.status.get_or_insert_with(Default::default).conditions = Some(list);
                needs_flush = true;
            }
            ctx.finished = Some(condition(COMPLETE, "True", reason_message(&c), now));
        }

        // 1. Write the uncounted UIDs (and interim condition) before touching finalizers.
        if needs_flush {
            ctx.job = self.update_status(&ctx.job).await?;
            self.backoff.set(&ctx.key, ctx.record);
            needs_flush = false;
        }
        // 2. Remove the finalizers.
        let mut rm_err: Option<Error> = None;
        if !to_remove.is_empty() {
            self.exp.expect_finalizers_removed(&ctx.key, to_remove.iter().map(|p| uid(p)));
            let results =
                futures::future::join_all(to_remove.iter().map(|p| super::remove_finalizer(&self.client, p))).await;
            for (p, r) in to_remove.iter().zip(results) {
                match r {
                    Ok(()) => {
                        with_finalizer.remove(&uid(p));
                    }
                    Err(e) => {
                        self.exp.finalizer_removal_observed(&ctx.key, &uid(p));
                        rm_err.get_or_insert(e);
                    }
                }
            }
        }
        // 3. Move the UIDs whose finalizer is gone into the counters.
        let st = ctx.job.status.get_or_insert_with(Default::default);
        needs_flush |= clean_uncounted(st, &with_finalizer);
        if let Some(e) = rm_err {
            if needs_flush {
                ctx.job = self.update_status(&ctx.job).await?;
            }
            return Err(e);
        }
        // 4. The terminal condition, once nothing is uncounted or terminating.
        let finished = !reached_max && self.enact_finished(ctx);
        if finished || needs_flush {
            ctx.job = self.update_status(&ctx.job).await?;
        }
        if finished && let Some(c) = ctx.finished.clone() {
            self.record_finished(&ctx.job, &c).await;
        }
        Ok(())
    }

    fn enact_finished(&self, ctx: &mut Ctx<'_>) -> bool {
        let Some(c) = ctx.finished.clone() else { return false };
        let st = ctx.job.status.get_or_insert_with(Default::default);
        if uncounted_len(st) > 0 || ctx.terminating > 0 {
            return false;
        }
        let conds = st.conditions.get_or_insert_with(Vec::new);
        status::ensure(conds, &c.type_, &c.status, reason_message(&c), ctx.now);
        if c.type_ == COMPLETE {
            st.completion_time = c.last_transition_time.clone();
        }
        true
    }

    async fn record_finished(&self, job: &Job, c: &JobCondition) {
        if c.type_ == COMPLETE {
            let completions = job.spec.as_ref().and_then(|s| s.completions);
            let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if completions.is_some_and(|n| succeeded > n) {
                let msg = "Too many succeeded pods running after completion count reached";
                self.recorder.record(job, EventType::Warning, "TooManySucceededPods", msg).await;
            }
            self.recorder.record(job, EventType::Normal, "Completed", "Job completed").await;
        } else {
            let (reason, msg) = reason_message(c);
            self.recorder.record(job, EventType::Warning, reason, msg).await;
        }
    }

    /// Writes the status (PUT on `/status`, so a stale copy fails with a conflict and the Job is retried).
    async fn update_status(&self, job: &Job) -> rkube_client::Result<Job> {
        let mut job = job.clone();
        if let Some(st) = job.status.as_mut() {
            // Upstream's zero counters are omitted (`omitempty`).
            st.active = st.active.filter(|n| *n != 0);
            st.succeeded = st.succeeded.filter(|n| *n != 0);
            st.failed = st.failed.filter(|n| *n != 0);
            if st.conditions.as_ref().is_some_and(Vec::is_empty) {
                st.conditions = None;
            }
        }
        let api: Api<Job> = Api::namespaced(self.client.clone(), &job.namespace().unwrap_or_default());
        let r = api.replace_status(&job.name_any(), &PostParams::default(), &job).await;
        if let Ok(written) = &r {
            self.written.note(&super::job_key(written), written);
        }
        r.map_err(|e| {
            if rkube_client::api::is_conflict(&e) {
                Error::Conflict(format!("updating the status of job {}", job_name(&job)))
            } else {
                Error::api(format!("updating the status of job {}", job_name(&job)), e)
            }
        })
    }
}
