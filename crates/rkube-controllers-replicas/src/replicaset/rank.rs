//! Which surplus pods go first (upstream's `ActivePodsWithRanks` with pod-deletion-cost and logarithmic
//! scale-down): unassigned before assigned, Pending before Unknown before Running, not ready before ready,
//! lower `controller.kubernetes.io/pod-deletion-cost` first, pods doubled up on a node with more related
//! pods first, recently ready before long ready, more restarts first, newer before older.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use rkube_client::pods::{is_active, phase, ready_since};

/// The annotation that orders deletions among otherwise equal pods.
pub(crate) const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn node(p: &Pod) -> &str {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn phase_ordinal(p: &Pod) -> u8 {
    match phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        // Pending and anything unexpected rank lowest, as a missing key in upstream's map does.
        _ => 0,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata.annotations.as_ref().and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

fn created(p: &Pod) -> Option<Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// `floor(log2(now - t))` in nanoseconds, -1 for times not before `now` (upstream's buckets).
fn log_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d <= 0 {
        return -1;
    }
    // Exact for any duration a pod can have: the bucket is the index of the highest set bit.
    127 - i64::from(d.leading_zeros())
}

/// Newer (or unknown) times first, compared in logarithmic buckets; equal buckets fall back to UIDs.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>, ua: &str, ub: &str, now: Timestamp) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_bucket(x, now).cmp(&log_bucket(y, now)) {
            Ordering::Equal => ua.cmp(ub),
            other => other,
        },
    }
}

/// Orders `a` before `b` when `a` should be deleted first; `rank_*` count related active pods on the pod's node.
pub(crate) fn deletion_order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> Ordering {
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() { Ordering::Less } else { Ordering::Greater };
    }
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ra, rb) = (ready_since(a), ready_since(b));
    if ra.is_some() != rb.is_some() {
        return if ra.is_none() { Ordering::Less } else { Ordering::Greater };
    }
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if let (Some(x), Some(y)) = (ra, rb)
        && x != y
    {
        // A Ready condition without a transition time counts as "zero", which sorts first.
        let zero = |t: Timestamp| (t != Timestamp::UNIX_EPOCH).then_some(t);
        let by_ready = newer_first(zero(x), zero(y), &uid(a), &uid(b), now);
        if by_ready != Ordering::Equal {
            return by_ready;
        }
    }
    let by_restarts = restarts(b).cmp(&restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    newer_first(created(a), created(b), &uid(a), &uid(b), now)
}

/// The `diff` pods of `pods` to delete, ranked against `related` (the pods of the owner and its siblings
/// under the same Deployment), as upstream's `getPodsToDelete`.
pub(crate) fn pods_to_delete(
    mut pods: Vec<Arc<Pod>>,
    related: &[Arc<Pod>],
    diff: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if diff < pods.len() {
        let mut on_node: HashMap<&str, usize> = HashMap::new();
        for p in related.iter().filter(|p| is_active(p)) {
            *on_node.entry(node(p)).or_default() += 1;
        }
        let rank = |p: &Pod| on_node.get(node(p)).copied().unwrap_or(0);
        pods.sort_by(|a, b| deletion_order(a, rank(a), b, rank(b), now));
    }
    pods.truncate(diff);
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(Time(ts(created)));
        p.spec = Some(PodSpec { node_name: (!node.is_empty()).then(|| node.to_owned()), ..PodSpec::default() });
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(t))),
                    ..PodCondition::default()
                }]
            }),
            ..PodStatus::default()
        });
        Arc::new(p)
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn ranks_as_upstream() {
        let now = ts(100_000);
        let running_ready = pod("ready", "n1", "Running", Some(1000), 900);
        let running_not_ready = pod("notready", "n1", "Running", None, 900);
        let pending = pod("pending", "n1", "Pending", None, 900);
        let unassigned = pod("unassigned", "", "Pending", None, 900);
        let unknown = pod("unknown", "n1", "Unknown", None, 900);
        let all = vec![running_ready.clone(), running_not_ready, pending, unassigned, unknown];
        let order = pods_to_delete(all.clone(), &all, 4, now);
        assert_eq!(names(&order), vec!["unassigned", "pending", "unknown", "notready"]);
    }

    #[test]
    fn cost_colocation_readiness_restarts_and_age() {
        let now = ts(100_000);
        // Deletion cost beats co-location.
        let mut cheap = (*pod("cheap", "n3", "Running", Some(1000), 900)).clone();
        cheap.metadata.annotations = Some([(DELETION_COST.to_owned(), "-5".to_owned())].into());
        let cheap = Arc::new(cheap);
        let a = pod("a", "n1", "Running", Some(1000), 900);
        let b = pod("b", "n1", "Running", Some(1000), 900);
        let lone = pod("lone", "n2", "Running", Some(1000), 900);
        let all = vec![lone.clone(), a.clone(), b.clone(), cheap.clone()];
        let order = pods_to_delete(all.clone(), &all, 2, now);
        assert_eq!(names(&order)[0], "cheap");
        assert!(names(&order)[1] == "a" || names(&order)[1] == "b", "doubled-up node first: {order:?}");
        // Ready recently (log bucket smaller) goes before ready long ago.
        let recent = pod("recent", "n1", "Running", Some(99_990), 900);
        let old = pod("old", "n3", "Running", Some(10), 900);
        let order = pods_to_delete(vec![old.clone(), recent.clone()], &[], 1, now);
        assert_eq!(names(&order), vec!["recent"]);
        // More restarts first, then newer first.
        let mut crashy = (*pod("crashy", "n1", "Running", Some(1000), 900)).clone();
        if let Some(s) = crashy.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus { restart_count: 3, ..ContainerStatus::default() }]);
        }
        let crashy = Arc::new(crashy);
        let order = pods_to_delete(vec![a.clone(), crashy], &[], 1, now);
        assert_eq!(names(&order), vec!["crashy"]);
        let young = pod("young", "n1", "Running", Some(1000), 99_000);
        let order = pods_to_delete(vec![a, young], &[], 1, now);
        assert_eq!(names(&order), vec!["young"]);
        assert_eq!(log_bucket(ts(0), ts(0)), -1);
        assert_eq!(log_bucket(ts(0), ts(1)), 29, "1 s = 1e9 ns, 2^29 <= 1e9 < 2^30");
    }

    #[test]
    fn no_sorting_when_everything_goes() {
        let all = vec![pod("x", "n1", "Running", Some(1), 1), pod("y", "", "Pending", None, 1)];
        assert_eq!(names(&pods_to_delete(all.clone(), &all, 5, ts(10))), vec!["x", "y"]);
    }
}
