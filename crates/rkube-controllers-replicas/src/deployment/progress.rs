//! A Deployment's status and conditions (upstream's `calculateStatus`, `syncRolloutStatus` and the
//! progress helpers): counts summed over its ReplicaSets, `Available` against maxUnavailable, and
//! `Progressing` with its reasons and the progress deadline.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::surge::{desired, max_unavailable};

/// Condition types.
pub(crate) const PROGRESSING: &str = "Progressing";
pub(crate) const AVAILABLE: &str = "Available";
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing reasons, as upstream's.
pub(crate) const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub(crate) const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub(crate) const RS_UPDATED: &str = "ReplicaSetUpdated";
pub(crate) const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub(crate) const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub(crate) const PAUSED: &str = "DeploymentPaused";
pub(crate) const RESUMED: &str = "DeploymentResumed";
pub(crate) const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

/// A new condition stamped `now`.
pub(crate) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of `type_`, if any.
pub(crate) fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Sets `c` (upstream's `SetDeploymentCondition`): an identical status and reason leaves the old one
/// untouched; the same status keeps the old transition time.
pub(crate) fn set(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove(status, &c.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(c);
}

/// Removes the condition of `type_`.
pub(crate) fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn sum(rss: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    rss.iter().map(|rs| f(rs)).sum()
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status
        .as_ref()
        .map_or((0, 0, 0), |s| (s.replicas, s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0)))
}

/// `progressDeadlineSeconds` when set to something other than "never".
pub(crate) fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).filter(|s| *s != i32::MAX)
}

/// The status from the ReplicaSets (`all` includes the new one), keeping the current conditions and
/// setting `Available` (upstream's `calculateStatus`).
pub(crate) fn calculate(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available = sum(all, |rs| status_of(rs).2);
    let total = sum(all, |rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(sum(all, |rs| status_of(rs).0)),
        updated_replicas: nonzero(new_rs.map_or(0, |rs| status_of(rs).0)),
        ready_replicas: nonzero(sum(all, |rs| status_of(rs).1)),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero((total - available).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: current.terminating_replicas,
    };
    if available >= desired(d) - max_unavailable(d) {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    status
}

/// Every replica updated and available, and the status is for the current generation.
pub(crate) fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let n = desired(d);
    s.updated_replicas.unwrap_or(0) == n
        && s.replicas.unwrap_or(0) == n
        && s.available_replicas.unwrap_or(0) == n
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// The new status shows progress over the stored one.
pub(crate) fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |o: Option<i32>| o.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// The rollout has not progressed for `progressDeadlineSeconds`.
pub(crate) fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else { return false };
    let Some(c) = get(s, PROGRESSING) else { return false };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| t.0.as_second() + i64::from(deadline) < now.as_second()),
    }
}

fn replica_failures(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<DeploymentCondition> {
    let failures = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
            .collect()
    };
    let new_failures = new_rs.map(failures).unwrap_or_default();
    if !new_failures.is_empty() {
        return new_failures;
    }
    all.iter().flat_map(|rs| failures(rs)).collect()
}

/// The status a rollout reports (upstream's `syncRolloutStatus` before the write).
pub(crate) fn rollout_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut s = calculate(all, new_rs, d, now);
    if progress_deadline(d).is_none() {
        remove(&mut s, PROGRESSING);
    }
    let current = get(&s, PROGRESSING).cloned();
    let finished = s.replicas == s.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    let rs_name = new_rs.and_then(|rs| rs.metadata.name.clone());
    if progress_deadline(d).is_some() && !finished {
        if complete(d, &s) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                None => "Deployment has successfully progressed.".to_owned(),
            };
            set(&mut s, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now));
        } else if progressing(d, &s) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                None => "Deployment is progressing.".to_owned(),
            };
            let mut c = condition(PROGRESSING, "True", RS_UPDATED, msg, now);
            // Progress refreshes the update time, and the transition time only on a status change.
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove(&mut s, PROGRESSING);
            }
            set(&mut s, c);
        } else if timed_out(d, &s, now) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                None => {
                    format!("Deployment \"{}\" has timed out progressing.", d.metadata.name.clone().unwrap_or_default())
                }
            };
            set(&mut s, condition(PROGRESSING, "False", TIMED_OUT, msg, now));
        }
    }
    match replica_failures(all, new_rs).into_iter().next() {
        Some(c) => set(&mut s, c),
        None => remove(&mut s, REPLICA_FAILURE),
    }
    s
}

/// When to look again at a rollout whose status did not change, to notice its deadline passing
/// (upstream's `requeueStuckDeployment`).
pub(crate) fn recheck_in(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let current = d.status.as_ref().and_then(|s| get(s, PROGRESSING))?;
    if complete(d, new) || current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let updated = current.last_update_time.as_ref()?.0.as_second();
    let left = updated + i64::from(deadline) - now.as_second();
    if left < 1 {
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn deployment(replicas: i32, generation: i64) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        };
        d.metadata.generation = Some(generation);
        d.metadata.name = Some("web".into());
        d
    }

    fn rs(name: &str, spec: i32, have: i32, ready: i32, available: i32) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(spec), ..ReplicaSetSpec::default() }),
            status: Some(ReplicaSetStatus {
                replicas: have,
                ready_replicas: Some(ready),
                available_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
            ..ReplicaSet::default()
        };
        rs.metadata.name = Some(name.into());
        rs
    }

    #[test]
    fn counts_and_availability() {
        let d = deployment(5, 2);
        let old = rs("old", 4, 4, 4, 4);
        let new = rs("new", 2, 2, 1, 1);
        let s = calculate(&[&old, &new], Some(&new), &d, ts(10));
        assert_eq!(s.replicas, Some(6));
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(5));
        assert_eq!(s.available_replicas, Some(5));
        assert_eq!(s.unavailable_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(get(&s, AVAILABLE).and_then(|c| c.reason.as_deref()), Some("MinimumReplicasAvailable"));
        let down = rs("new", 5, 5, 2, 2);
        let s = calculate(&[&down], Some(&down), &d, ts(10));
        assert_eq!(get(&s, AVAILABLE).map(|c| c.status.as_str()), Some("False"));
    }

    #[test]
    fn progressing_reasons_and_deadline() {
        let mut d = deployment(2, 1);
        let new = rs("web-1", 2, 2, 1, 1);
        let s = rollout_status(&[&new], Some(&new), &d, ts(100));
        let c = get(&s, PROGRESSING).cloned();
        assert_eq!(c.as_ref().and_then(|c| c.reason.as_deref()), Some(RS_UPDATED));
        assert_eq!(c.as_ref().and_then(|c| c.message.clone()).as_deref(), Some("ReplicaSet \"web-1\" is progressing."));
        d.status = Some(s);
        // No progress for longer than the deadline.
        assert_eq!(recheck_in(&d, &d.status.clone().unwrap_or_default(), ts(200)), Some(Duration::from_secs(501)));
        let s = rollout_status(&[&new], Some(&new), &d, ts(701));
        assert_eq!(get(&s, PROGRESSING).and_then(|c| c.reason.as_deref()), Some(TIMED_OUT));
        assert_eq!(get(&s, PROGRESSING).map(|c| c.status.as_str()), Some("False"));
        // Done.
        let done = rs("web-1", 2, 2, 2, 2);
        let s = rollout_status(&[&done], Some(&done), &d, ts(800));
        let c = get(&s, PROGRESSING).cloned();
        assert_eq!(c.as_ref().and_then(|c| c.reason.as_deref()), Some(NEW_RS_AVAILABLE));
        assert_eq!(c.and_then(|c| c.message).as_deref(), Some("ReplicaSet \"web-1\" has successfully progressed."));
        assert!(complete(&d, &s));
        assert_eq!(recheck_in(&d, &s, ts(800)), None);
    }

    #[test]
    fn set_keeps_identical_conditions() {
        let mut s = DeploymentStatus::default();
        set(&mut s, condition(AVAILABLE, "True", "A", "m".into(), ts(1)));
        set(&mut s, condition(AVAILABLE, "True", "A", "other".into(), ts(2)));
        assert_eq!(get(&s, AVAILABLE).and_then(|c| c.message.as_deref()), Some("m"));
        set(&mut s, condition(AVAILABLE, "True", "B", "n".into(), ts(3)));
        let c = get(&s, AVAILABLE).cloned().unwrap_or_else(|| condition("", "", "", String::new(), ts(0)));
        assert_eq!(c.last_transition_time, Some(Time(ts(1))));
        assert_eq!(c.last_update_time, Some(Time(ts(3))));
        remove(&mut s, AVAILABLE);
        assert!(s.conditions.is_none());
    }
}
