//! The arithmetic of a PodDisruptionBudget's status, as upstream's disruption controller: expected and
//! desired healthy pods from `minAvailable`/`maxUnavailable`, healthy pods net of recent evictions, and
//! the status (with its `DisruptionAllowed` condition) to write, if anything changed. No IO, `now` given.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// How long an eviction's entry in `disruptedPods` keeps its pod out of the healthy count (upstream's
/// `DeletionTimeout`): after that the pod is assumed not to be deleted after all.
pub(crate) const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// The condition type, and its reasons.
pub(crate) const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
const SUFFICIENT_PODS: &str = "SufficientPods";
const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// The reason written when the status cannot be computed.
pub(crate) const SYNC_FAILED: &str = "SyncFailed";

/// Upstream's `GetScaledValueFromIntOrPercent`: an integer as is, a percentage of `total` rounded up or down.
pub(crate) fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(num) = s.strip_suffix('%') else {
                return Err("invalid value for IntOrString: invalid type: string is not a percentage".into());
            };
            let pct: i64 =
                num.parse().map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            let product = pct * i64::from(total);
            let value = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(value).map_err(|_| format!("invalid value for IntOrString: {s:?} is out of range"))
        }
    }
}

/// Whether the budget needs the scale of its pods' controllers (percentages and `maxUnavailable`).
pub(crate) fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// `(expectedPods, desiredHealthy)` as upstream's `getExpectedPodCount`: `scale` is the sum of the pods'
/// controllers' `spec.replicas`, needed only when [`needs_scale`] says so.
pub(crate) fn expected_and_desired(
    spec: &PodDisruptionBudgetSpec,
    pod_count: usize,
    scale: Option<i32>,
) -> Result<(i32, i32), String> {
    if let Some(max) = &spec.max_unavailable {
        let expected = scale.unwrap_or(0);
        let unavailable = scaled_value(max, expected, true)?;
        return Ok((expected, (expected - unavailable).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(min)) => Ok((i32::try_from(pod_count).unwrap_or(i32::MAX), *min)),
        Some(min @ IntOrString::String(_)) => {
            let expected = scale.unwrap_or(0);
            Ok((expected, scaled_value(min, expected, true)?))
        }
        None => Ok((0, 0)),
    }
}

fn is_ready(pod: &Pod) -> bool {
    rkube_client::pods::is_ready(pod)
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| t.checked_add(d).ok()).unwrap_or(t)
}

/// The budget's `disruptedPods` still in force: entries for pods that exist, are not being deleted and
/// were evicted less than [`DELETION_TIMEOUT`] ago; also when the earliest of them expires, and the pods
/// whose entry expired without them being deleted (upstream records a `NotDeleted` event for those).
pub(crate) fn disrupted_pods<'a>(
    pods: &'a [Pod],
    status: Option<&PodDisruptionBudgetStatus>,
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<&'a Pod>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let mut expired = Vec::new();
    let Some(recorded) = status.and_then(|s| s.disrupted_pods.as_ref()) else { return (kept, recheck, expired) };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let Some(at) = recorded.get(name_of(pod)) else { continue };
        let deadline = plus(at.0, DELETION_TIMEOUT);
        if deadline < now {
            expired.push(pod);
        } else {
            recheck = Some(recheck.map_or(deadline, |r| r.min(deadline)));
            kept.insert(name_of(pod).to_owned(), at.clone());
        }
    }
    (kept, recheck, expired)
}

/// Ready pods that are neither being deleted nor recently evicted (upstream's `countHealthyPods`).
pub(crate) fn current_healthy(pods: &[Pod], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let count = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| disrupted.get(name_of(p)).is_none_or(|at| plus(at.0, DELETION_TIMEOUT) <= now))
        .filter(|p| is_ready(p))
        .count();
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// Sets `type` in `conds` as apimachinery's `SetStatusCondition`: the transition time moves only when the
/// status flips.
pub(crate) fn set_condition(conds: &mut Vec<Condition>, mut cond: Condition) {
    match conds.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(c) => {
            if c.status != cond.status {
                c.status = cond.status;
                c.last_transition_time = cond.last_transition_time;
            }
            c.reason = cond.reason;
            c.message = cond.message;
            c.observed_generation = cond.observed_generation;
        }
        None => {
            if cond.last_transition_time.0 == Timestamp::UNIX_EPOCH {
                cond.last_transition_time = Time(Timestamp::now());
            }
            conds.push(cond);
        }
    }
}

fn allowed_condition(allowed: i32, generation: Option<i64>, now: Timestamp) -> Condition {
    let (status, reason) = if allowed > 0 { ("True", SUFFICIENT_PODS) } else { ("False", INSUFFICIENT_PODS) };
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// Whether the condition says what `disruptionsAllowed` says, for the generation observed (upstream's
/// `ConditionsAreUpToDate`).
fn condition_up_to_date(pdb: &PodDisruptionBudget, status: &PodDisruptionBudgetStatus) -> bool {
    let Some(c) = status.conditions.iter().flatten().find(|c| c.type_ == DISRUPTION_ALLOWED) else { return false };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    if status.disruptions_allowed > 0 {
        c.status == "True" && c.reason == SUFFICIENT_PODS
    } else {
        c.status == "False" && c.reason == INSUFFICIENT_PODS
    }
}

/// What the controller computed for one budget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observed {
    /// Healthy pods now.
    pub(crate) current_healthy: i32,
    /// Healthy pods the budget wants.
    pub(crate) desired_healthy: i32,
    /// Pods the budget expects.
    pub(crate) expected_pods: i32,
    /// Evictions not yet seen through.
    pub(crate) disrupted: BTreeMap<String, Time>,
}

/// The status to write, or `None` when the stored one already says all this (upstream's `updatePdbStatus`).
pub(crate) fn next_status(
    pdb: &PodDisruptionBudget,
    seen: Observed,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    // No expected pods: a budget whose first pods just appeared must not allow disruptions yet.
    let mut allowed = seen.current_healthy - seen.desired_healthy;
    if seen.expected_pods <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let disrupted = (!seen.disrupted.is_empty()).then_some(seen.disrupted);
    let old_disrupted = old.disrupted_pods.clone().filter(|m| !m.is_empty());
    if old.current_healthy == seen.current_healthy
        && old.desired_healthy == seen.desired_healthy
        && old.expected_pods == seen.expected_pods
        && old.disruptions_allowed == allowed
        && old_disrupted == disrupted
        && old.observed_generation == pdb.metadata.generation
        && condition_up_to_date(pdb, &old)
    {
        return None;
    }
    let mut conditions = old.conditions.unwrap_or_default();
    set_condition(&mut conditions, allowed_condition(allowed, pdb.metadata.generation, now));
    Some(PodDisruptionBudgetStatus {
        current_healthy: seen.current_healthy,
        desired_healthy: seen.desired_healthy,
        expected_pods: seen.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: disrupted,
        observed_generation: pdb.metadata.generation,
        conditions: Some(conditions),
    })
}

/// The status after a failed computation (upstream's `failSafe`): no disruptions allowed, and a
/// `SyncFailed` condition carrying the error. `None` when it already says so.
pub(crate) fn fail_safe_status(
    pdb: &PodDisruptionBudget,
    error: &str,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let old = pdb.status.clone().unwrap_or_default();
    let mut next = old.clone();
    next.disruptions_allowed = 0;
    let mut conditions = old.conditions.clone().unwrap_or_default();
    set_condition(
        &mut conditions,
        Condition {
            type_: DISRUPTION_ALLOWED.into(),
            status: "False".into(),
            reason: SYNC_FAILED.into(),
            message: error.to_owned(),
            observed_generation: old.observed_generation,
            last_transition_time: Time(now),
        },
    );
    next.conditions = Some(conditions);
    (next != old).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(name: &str, ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        p
    }

    fn spec(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudgetSpec {
        PodDisruptionBudgetSpec { min_available: min, max_unavailable: max, ..PodDisruptionBudgetSpec::default() }
    }

    #[test]
    fn percentages_round_up_as_upstream() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&pct("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&pct("34%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&pct("100%"), 7, true), Ok(7));
        assert_eq!(scaled_value(&IntOrString::Int(4), 3, true), Ok(4));
        assert!(scaled_value(&pct("5"), 3, true).is_err());
        assert!(scaled_value(&pct("x%"), 3, true).is_err());
    }

    #[test]
    fn expected_and_desired_follow_the_spec() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        // An integer minAvailable counts the matching pods and needs no scale.
        let s = spec(Some(int(2)), None);
        assert!(!needs_scale(&s));
        assert_eq!(expected_and_desired(&s, 3, None), Ok((3, 2)));
        // Percentages and maxUnavailable use the controllers' replicas.
        let s = spec(Some(pct("50%")), None);
        assert!(needs_scale(&s));
        assert_eq!(expected_and_desired(&s, 2, Some(5)), Ok((5, 3)));
        assert_eq!(expected_and_desired(&spec(None, Some(int(1))), 3, Some(4)), Ok((4, 3)));
        assert_eq!(expected_and_desired(&spec(None, Some(pct("30%"))), 3, Some(4)), Ok((4, 2)));
        assert_eq!(expected_and_desired(&spec(None, Some(int(9))), 3, Some(4)), Ok((4, 0)));
    }

    #[test]
    fn healthy_pods_exclude_unready_deleting_and_recently_evicted() {
        let now = at(10_000);
        let mut deleting = pod("d", true);
        deleting.metadata.deletion_timestamp = Some(Time(now));
        let pods = vec![pod("a", true), pod("b", true), pod("c", false), deleting, pod("e", true)];
        let status = PodDisruptionBudgetStatus {
            disrupted_pods: Some(BTreeMap::from([
                ("b".to_owned(), Time(at(10_000 - 30))),
                ("e".to_owned(), Time(at(10_000 - 300))),
                ("gone".to_owned(), Time(at(10_000 - 30))),
            ])),
            ..PodDisruptionBudgetStatus::default()
        };
        let (kept, recheck, expired) = disrupted_pods(&pods, Some(&status), now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(recheck, Some(at(10_000 - 30 + 120)));
        assert_eq!(expired.len(), 1);
        // a and e are healthy; b was just evicted, c is unready, d is being deleted.
        assert_eq!(current_healthy(&pods, &kept, now), 2);
    }

    #[test]
    fn status_is_written_only_when_it_changes() {
        let now = at(1000);
        let mut pdb = PodDisruptionBudget::default();
        pdb.metadata.generation = Some(1);
        let seen = Observed { current_healthy: 3, desired_healthy: 2, expected_pods: 3, disrupted: BTreeMap::new() };
        let status = next_status(&pdb, seen.clone(), now).expect("first write");
        assert_eq!(status.disruptions_allowed, 1);
        assert_eq!(status.observed_generation, Some(1));
        let cond = &status.conditions.clone().unwrap_or_default()[0];
        assert_eq!((cond.status.as_str(), cond.reason.as_str()), ("True", "SufficientPods"));
        pdb.status = Some(status);
        assert_eq!(next_status(&pdb, seen.clone(), at(2000)), None);
        // No expected pods: nothing allowed, whatever the counts.
        let none = Observed { expected_pods: 0, ..seen };
        let status = next_status(&pdb, none, at(3000)).expect("changed");
        assert_eq!(status.disruptions_allowed, 0);
        let cond = &status.conditions.unwrap_or_default()[0];
        assert_eq!((cond.status.as_str(), cond.reason.as_str()), ("False", "InsufficientPods"));
        assert_eq!(cond.last_transition_time, Time(at(3000)));
    }

    #[test]
    fn failures_allow_no_disruption() {
        let mut pdb = PodDisruptionBudget {
            status: Some(PodDisruptionBudgetStatus { disruptions_allowed: 2, ..Default::default() }),
            ..Default::default()
        };
        let s = fail_safe_status(&pdb, "found no controllers for pod \"x\"", at(5)).expect("changed");
        assert_eq!(s.disruptions_allowed, 0);
        let cond = &s.conditions.clone().unwrap_or_default()[0];
        assert_eq!(cond.reason, "SyncFailed");
        assert_eq!(cond.message, "found no controllers for pod \"x\"");
        pdb.status = Some(s);
        assert_eq!(fail_safe_status(&pdb, "found no controllers for pod \"x\"", at(9)), None);
    }
}
