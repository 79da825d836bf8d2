//! A DaemonSet's status counts as upstream's `updateDaemonSetStatus` computes them, and whether they
//! differ from what the object says (status is written only when they do).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::manage::{is_updated, sort_oldest_first};
use super::placement::should_run;
use rkube_client::pods;

/// The counts over every node: desired, scheduled, misscheduled, ready, available, updated.
pub(crate) fn compute(
    ds: &DaemonSet,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    now: Timestamp,
) -> DaemonSetStatus {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let (mut desired, mut current, mut mis, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
    for n in nodes {
        let list = by_node.get(&n.name_any()).filter(|l| !l.is_empty());
        if !should_run(n, ds).0 {
            mis += i32::from(list.is_some());
            continue;
        }
        desired += 1;
        let Some(list) = list else { continue };
        current += 1;
        let mut sorted = list.clone();
        sort_oldest_first(&mut sorted);
        let pod = sorted[0];
        if pods::is_ready(pod) {
            ready += 1;
            available += i32::from(pods::is_available(pod, min_ready, now));
        }
        updated += i32::from(is_updated(pod, ds, hash));
    }
    DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: mis,
        number_ready: ready,
        number_available: Some(available),
        number_unavailable: Some(desired - available),
        updated_number_scheduled: Some(updated),
        ..DaemonSetStatus::default()
    }
}

/// Whether `ds`'s status must be written: a count differs, or the observed generation is behind and may
/// be raised (upstream's `storeDaemonSetStatus` check).
pub(crate) fn needs_write(ds: &DaemonSet, counts: &DaemonSetStatus, raise_generation: bool) -> bool {
    let cur = ds.status.clone().unwrap_or_default();
    let zero = |v: Option<i32>| v.unwrap_or(0);
    let behind = cur.observed_generation.unwrap_or(0) < ds.metadata.generation.unwrap_or(0);
    cur.desired_number_scheduled != counts.desired_number_scheduled
        || cur.current_number_scheduled != counts.current_number_scheduled
        || cur.number_misscheduled != counts.number_misscheduled
        || cur.number_ready != counts.number_ready
        || zero(cur.updated_number_scheduled) != zero(counts.updated_number_scheduled)
        || zero(cur.number_available) != zero(counts.number_available)
        || zero(cur.number_unavailable) != zero(counts.number_unavailable)
        || (behind && raise_generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::fixtures::{at, daemonset, nodes, pod};
    use crate::daemonset::manage::pods_by_node;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};

    #[test]
    fn counts_desired_scheduled_ready_available_updated_and_misscheduled() {
        let mut ns = nodes(4);
        ns[3].spec = Some(NodeSpec {
            taints: Some(vec![Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]),
            ..Default::default()
        });
        let refs: Vec<&Node> = ns.iter().collect();
        let mut ds = daemonset(None, None);
        if let Some(s) = ds.spec.as_mut() {
            s.min_ready_seconds = Some(10);
        }
        let pods = vec![
            pod("a", "n0", "new", 1, Some(1)),  // ready and available
            pod("b", "n1", "old", 1, Some(95)), // ready, not yet available
            pod("c", "n3", "new", 1, Some(1)),  // on a node it should not be on
        ];
        let by_node = pods_by_node(&pods);
        let st = compute(&ds, &refs, &by_node, "new", at(100));
        assert_eq!(
            (st.desired_number_scheduled, st.current_number_scheduled, st.number_misscheduled, st.number_ready),
            (3, 2, 1, 2)
        );
        assert_eq!(
            (st.number_available, st.number_unavailable, st.updated_number_scheduled),
            (Some(1), Some(2), Some(1))
        );
        assert!(needs_write(&ds, &st, false));
        ds.status = Some(st.clone());
        assert!(!needs_write(&ds, &st, true));
        ds.metadata.generation = Some(2);
        assert!(!needs_write(&ds, &st, false), "an unobserved generation alone waits for the expectations");
        assert!(needs_write(&ds, &st, true));
    }
}
