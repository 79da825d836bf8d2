//! The taints the node lifecycle controller owns (upstream's `nodeConditionToTaintKeyStatusMap` and
//! templates) and the pure edits of a node's taint list: which NoSchedule taints a node's conditions call
//! for, and swapping taints in and out.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Ready=Unknown.
pub(crate) const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Ready=False.
pub(crate) const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `spec.unschedulable`.
pub(crate) const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// `NoSchedule`.
pub(crate) const NO_SCHEDULE: &str = "NoSchedule";
/// `NoExecute`.
pub(crate) const NO_EXECUTE: &str = "NoExecute";

/// The taint a node condition in a given status calls for.
fn condition_taint(kind: &str, status: &str) -> Option<&'static str> {
    match (kind, status) {
        ("Ready", "False") => Some(NOT_READY),
        ("Ready", "Unknown") => Some(UNREACHABLE),
        ("MemoryPressure", "True") => Some("node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "True") => Some("node.kubernetes.io/disk-pressure"),
        ("NetworkUnavailable", "True") => Some("node.kubernetes.io/network-unavailable"),
        ("PIDPressure", "True") => Some("node.kubernetes.io/pid-pressure"),
        _ => None,
    }
}

/// Whether `key` is one of the condition taints (any status) or the unschedulable taint.
fn is_owned_no_schedule(key: &str) -> bool {
    key == UNSCHEDULABLE
        || ["Ready", "MemoryPressure", "DiskPressure", "NetworkUnavailable", "PIDPressure"]
            .iter()
            .any(|k| ["True", "False", "Unknown"].iter().any(|s| condition_taint(k, s) == Some(key)))
}

/// A taint with no value.
pub(crate) fn taint(key: &str, effect: &str) -> Taint {
    Taint { key: key.to_owned(), effect: effect.to_owned(), value: None, time_added: None }
}

/// The node's taints.
pub(crate) fn of(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

/// Whether `taints` has one with `key` and `effect` (upstream's `MatchTaint`).
pub(crate) fn has(taints: &[Taint], key: &str, effect: &str) -> bool {
    taints.iter().any(|t| t.key == key && t.effect == effect)
}

/// The NoSchedule taints to add and remove so that the node carries exactly those its conditions and
/// `spec.unschedulable` call for (upstream's `doNoScheduleTaintingPass`); other taints are not ours.
pub(crate) fn no_schedule_diff(node: &Node) -> (Vec<Taint>, Vec<Taint>) {
    let mut wanted: Vec<Taint> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| condition_taint(&c.type_, &c.status))
        .map(|k| taint(k, NO_SCHEDULE))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push(taint(UNSCHEDULABLE, NO_SCHEDULE));
    }
    let current: Vec<&Taint> =
        of(node).iter().filter(|t| t.effect == NO_SCHEDULE && is_owned_no_schedule(&t.key)).collect();
    let add = wanted.iter().filter(|w| !current.iter().any(|c| c.key == w.key)).cloned().collect();
    let del = current.into_iter().filter(|c| !wanted.iter().any(|w| w.key == c.key)).cloned().collect();
    (add, del)
}

/// `taints` with `add` added (NoExecute ones stamped `timeAdded = now`; a taint already there with the
/// same key and effect is kept as it is, so its `timeAdded` stays) and `del` removed; `None` when nothing
/// changes.
pub(crate) fn swap(taints: &[Taint], add: &[Taint], del: &[Taint], now: &Time) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> =
        taints.iter().filter(|t| !del.iter().any(|d| d.key == t.key && d.effect == t.effect)).cloned().collect();
    for a in add {
        if !has(&out, &a.key, &a.effect) {
            let mut t = a.clone();
            if t.effect == NO_EXECUTE {
                t.time_added = Some(now.clone());
            }
            out.push(t);
        }
    }
    (out != taints).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::jiff::Timestamp;

    fn node(conds: &[(&str, &str)], unschedulable: bool, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec { unschedulable: Some(unschedulable), taints: Some(taints), ..NodeSpec::default() }),
            status: Some(NodeStatus {
                conditions: Some(
                    conds
                        .iter()
                        .map(|(k, s)| NodeCondition { type_: (*k).into(), status: (*s).into(), ..Default::default() })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    fn keys(t: &[Taint]) -> Vec<String> {
        t.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect()
    }

    #[test]
    fn conditions_and_unschedulable_call_for_no_schedule_taints() {
        let n = node(&[("Ready", "Unknown"), ("DiskPressure", "True")], true, vec![]);
        let (add, del) = no_schedule_diff(&n);
        assert_eq!(
            keys(&add),
            [
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule"
            ]
        );
        assert!(del.is_empty());
        let healthy = node(
            &[("Ready", "True")],
            false,
            vec![taint(NOT_READY, NO_SCHEDULE), taint("user/own", NO_SCHEDULE), taint(NOT_READY, NO_EXECUTE)],
        );
        let (add, del) = no_schedule_diff(&healthy);
        assert!(add.is_empty());
        assert_eq!(keys(&del), ["node.kubernetes.io/not-ready:NoSchedule"], "user taints and NoExecute are not ours");
    }

    #[test]
    fn swapping_stamps_no_execute_taints_and_keeps_existing_ones() {
        let now = Time(Timestamp::from_second(100).unwrap());
        let later = Time(Timestamp::from_second(200).unwrap());
        let t = swap(&[], &[taint(UNREACHABLE, NO_EXECUTE)], &[taint(NOT_READY, NO_EXECUTE)], &now).unwrap();
        assert_eq!(t[0].time_added, Some(now.clone()));
        // Adding it again changes nothing: the first timeAdded stays.
        assert_eq!(swap(&t, &[taint(UNREACHABLE, NO_EXECUTE)], &[], &later), None);
        let swapped = swap(&t, &[taint(NOT_READY, NO_EXECUTE)], &[taint(UNREACHABLE, NO_EXECUTE)], &later).unwrap();
        assert_eq!(keys(&swapped), ["node.kubernetes.io/not-ready:NoExecute"]);
        let ns = swap(&[], &[taint(UNSCHEDULABLE, NO_SCHEDULE)], &[], &now).unwrap();
        assert_eq!(ns[0].time_added, None);
    }
}
