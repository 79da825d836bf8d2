//! Job status arithmetic: conditions (upstream's types, reasons and messages), whether a Job is finished
//! or suspended, and moving pods from `status.uncountedTerminatedPods` into the counters once their
//! tracking finalizers are gone.

use std::collections::HashSet;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Condition types.
pub(crate) const COMPLETE: &str = "Complete";
/// The Job failed.
pub(crate) const FAILED: &str = "Failed";
/// The Job will fail once its pods are gone.
pub(crate) const FAILURE_TARGET: &str = "FailureTarget";
/// The Job will complete once its pods are gone.
pub(crate) const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
/// The Job is suspended.
pub(crate) const SUSPENDED: &str = "Suspended";

/// Reasons and messages.
pub(crate) const BACKOFF_LIMIT_EXCEEDED: (&str, &str) =
    ("BackoffLimitExceeded", "Job has reached the specified backoff limit");
/// `activeDeadlineSeconds` passed.
pub(crate) const DEADLINE_EXCEEDED: (&str, &str) =
    ("DeadlineExceeded", "Job was active longer than specified deadline");
/// All completions reached.
pub(crate) const COMPLETIONS_REACHED: (&str, &str) =
    ("CompletionsReached", "Reached expected number of succeeded pods");

/// A new condition with both times `now`.
pub(crate) fn condition(type_: &str, status: &str, (reason, message): (&str, &str), now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
        message: Some(message.into()).filter(|m: &String| !m.is_empty()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of `type_`, if present.
pub(crate) fn find<'a>(conds: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// The condition of `type_` if it is True.
pub(crate) fn find_true<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    let conds = job.status.as_ref()?.conditions.as_deref()?;
    find(conds, type_).filter(|c| c.status == "True")
}

/// Upstream's `ensureJobConditionStatus`: sets the condition, replacing one that differs; a False condition
/// is not added where none was. Returns whether the list changed.
pub(crate) fn ensure(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    rm: (&str, &str),
    now: Timestamp,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        let same = c.status == status
            && c.reason.as_deref().unwrap_or("") == rm.0
            && c.message.as_deref().unwrap_or("") == rm.1;
        if same {
            return false;
        }
        *c = condition(type_, status, rm, now);
        return true;
    }
    if status == "False" {
        return false;
    }
    conds.push(condition(type_, status, rm, now));
    true
}

/// The Complete or Failed condition that is True, if the Job has finished (upstream's `IsJobFinished`).
pub(crate) fn finished(job: &Job) -> Option<&JobCondition> {
    let conds = job.status.as_ref()?.conditions.as_deref()?;
    conds.iter().find(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.status == "True")
}

/// `spec.suspend`.
pub(crate) fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// The pods listed in `status.uncountedTerminatedPods`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uncounted {
    /// Succeeded pod UIDs.
    pub(crate) succeeded: HashSet<String>,
    /// Failed pod UIDs.
    pub(crate) failed: HashSet<String>,
}

impl Uncounted {
    /// The sets of a status.
    pub(crate) fn of(status: &JobStatus) -> Uncounted {
        let u = status.uncounted_terminated_pods.as_ref();
        let set = |v: Option<&Vec<String>>| v.into_iter().flatten().cloned().collect();
        Uncounted {
            succeeded: set(u.and_then(|u| u.succeeded.as_ref())),
            failed: set(u.and_then(|u| u.failed.as_ref())),
        }
    }
}

/// Upstream's `cleanUncountedPodsWithoutFinalizers`: UIDs whose pod no longer holds the tracking
/// finalizer move from the uncounted lists into `succeeded`/`failed`. Returns whether anything moved.
pub(crate) fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let u = status.uncounted_terminated_pods.get_or_insert_with(UncountedTerminatedPods::default);
    let mut moved = (0, 0);
    for (list, n) in [(&mut u.succeeded, &mut moved.0), (&mut u.failed, &mut moved.1)] {
        let Some(v) = list.as_mut() else { continue };
        let before = v.len();
        v.retain(|uid| with_finalizer.contains(uid));
        *n = i32::try_from(before - v.len()).unwrap_or(i32::MAX);
        if v.is_empty() {
            *list = None;
        }
    }
    status.succeeded = Some(status.succeeded.unwrap_or(0) + moved.0);
    status.failed = Some(status.failed.unwrap_or(0) + moved.1);
    moved != (0, 0)
}

/// Adds a UID to an uncounted list.
pub(crate) fn push_uncounted(status: &mut JobStatus, succeeded: bool, uid: &str) {
    let u = status.uncounted_terminated_pods.get_or_insert_with(UncountedTerminatedPods::default);
    let list = if succeeded { &mut u.succeeded } else { &mut u.failed };
    list.get_or_insert_with(Vec::new).push(uid.to_owned());
}

/// How many pods are still uncounted.
pub(crate) fn uncounted_len(status: &JobStatus) -> usize {
    let u = status.uncounted_terminated_pods.as_ref();
    u.map_or(0, |u| u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len))
}

/// Upstream's `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure`, container restarts of running
/// and pending pods count against the backoff limit.
pub(crate) fn past_backoff_limit_on_failure(job: &Job, pods: &[&Pod]) -> bool {
    let spec = job.spec.as_ref();
    if spec.and_then(|s| s.template.spec.as_ref()).and_then(|s| s.restart_policy.as_deref()) != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(rkube_client::pods::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
        .map(|c| i64::from(c.restart_count))
        .sum();
    let limit = i64::from(spec.and_then(|s| s.backoff_limit).unwrap_or(6));
    if limit == 0 { restarts > 0 } else { restarts >= limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1000).expect("ts")
    }

    #[test]
    fn uncounted_pods_move_into_counters_once_their_finalizer_is_gone() {
        let mut st = JobStatus { succeeded: Some(1), ..Default::default() };
        push_uncounted(&mut st, true, "a");
        push_uncounted(&mut st, true, "b");
        push_uncounted(&mut st, false, "c");
        assert_eq!(uncounted_len(&st), 3);
        let with: HashSet<String> = ["b".to_owned()].into();
        assert!(clean_uncounted(&mut st, &with));
        assert_eq!((st.succeeded, st.failed), (Some(2), Some(1)));
        assert_eq!(uncounted_len(&st), 1);
        assert!(!clean_uncounted(&mut st, &with), "nothing more to move");
        assert!(clean_uncounted(&mut st, &HashSet::new()));
        assert_eq!((st.succeeded, st.failed, uncounted_len(&st)), (Some(3), Some(1), 0));
    }

    #[test]
    fn conditions_change_only_when_different() {
        let mut conds = Vec::new();
        assert!(!ensure(&mut conds, SUSPENDED, "False", ("JobResumed", "Job resumed"), now()));
        assert!(ensure(&mut conds, SUSPENDED, "True", ("JobSuspended", "Job suspended"), now()));
        assert!(!ensure(&mut conds, SUSPENDED, "True", ("JobSuspended", "Job suspended"), now()));
        assert!(ensure(&mut conds, SUSPENDED, "False", ("JobResumed", "Job resumed"), now()));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].reason.as_deref(), Some("JobResumed"));
        let target = condition(FAILURE_TARGET, "True", BACKOFF_LIMIT_EXCEEDED, now());
        let mut job = Job {
            status: Some(JobStatus { conditions: Some(vec![target.clone()]), ..Default::default() }),
            ..Default::default()
        };
        assert!(finished(&job).is_none(), "FailureTarget alone is not finished");
        let failed = condition(FAILED, "True", BACKOFF_LIMIT_EXCEEDED, now());
        job.status = Some(JobStatus { conditions: Some(vec![target, failed]), ..Default::default() });
        assert_eq!(finished(&job).map(|c| c.type_.as_str()), Some(FAILED));
    }
}
