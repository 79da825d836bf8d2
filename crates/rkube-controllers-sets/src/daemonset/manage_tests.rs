//! Planning pod creations and deletions per node.

use super::*;
use crate::daemonset::fixtures::{at, daemonset, nodes, pod};
use k8s_openapi::api::core::v1::{NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn creates_on_nodes_without_pods_and_removes_extra_and_misplaced_ones() {
    let mut ns = nodes(4);
    ns[3].spec = Some(NodeSpec {
        taints: Some(vec![Taint { key: "k".into(), effect: "NoExecute".into(), ..Default::default() }]),
        ..Default::default()
    });
    let refs: Vec<&Node> = ns.iter().collect();
    let ds = daemonset(Some(IntOrString::Int(1)), None);
    let pods = vec![
        pod("a", "n0", "h", 1, Some(1)),
        pod("b", "n1", "h", 2, Some(2)),
        pod("c", "n1", "h", 1, Some(1)),
        pod("d", "n3", "h", 1, Some(1)),
        pod("e", "gone", "h", 1, None),
    ];
    let mut unscheduled = pod("f", "", "h", 1, None);
    if let Some(s) = unscheduled.spec.as_mut() {
        s.node_name = None;
        super::super::placement::pin_to_node(s, "gone");
    }
    let all: Vec<Pod> = pods.into_iter().chain([unscheduled]).collect();
    let by_node = pods_by_node(&all);
    let p = plan(&ds, &refs, &by_node, "h", at(10), |_| false);
    assert_eq!(p.create_on, vec!["n2".to_owned()]);
    // The younger of two on n1, the pod on the NoExecute-tainted n3, the never-scheduled pod for a gone
    // node (the bound pod on the gone node is the pod GC's).
    assert_eq!(p.delete, vec!["b".to_owned(), "d".to_owned(), "f".to_owned()]);
    assert!(p.failed.is_empty());
}

#[test]
fn failed_pods_are_deleted_with_backoff_and_succeeded_ones_replaced() {
    let ns = nodes(2);
    let refs: Vec<&Node> = ns.iter().collect();
    let ds = daemonset(None, None);
    let mut failed = pod("a", "n0", "h", 1, None);
    if let Some(s) = failed.status.as_mut() {
        s.phase = Some("Failed".into());
    }
    let mut done = pod("b", "n1", "h", 1, None);
    if let Some(s) = done.status.as_mut() {
        s.phase = Some("Succeeded".into());
    }
    let all = vec![failed, done];
    let by_node = pods_by_node(&all);
    let p = plan(&ds, &refs, &by_node, "h", at(10), |_| false);
    assert_eq!(p.failed, vec![("a".to_owned(), "n0".to_owned())]);
    assert_eq!(p.delete, vec!["b".to_owned()]);
    let p = plan(&ds, &refs, &by_node, "h", at(10), |n| n == "n0");
    assert!(p.failed.is_empty() && p.backing_off);
}

#[test]
fn surge_keeps_old_pods_until_new_ones_are_available() {
    let ns = nodes(1);
    let refs: Vec<&Node> = ns.iter().collect();
    let ds = daemonset(Some(IntOrString::Int(0)), Some(IntOrString::Int(1)));
    let both = vec![pod("old", "n0", "o", 1, Some(1)), pod("new", "n0", "h", 5, None)];
    let by_node = pods_by_node(&both);
    assert!(plan(&ds, &refs, &by_node, "h", at(10), |_| false).delete.is_empty());
    let both = vec![pod("old", "n0", "o", 1, Some(1)), pod("new", "n0", "h", 5, Some(6))];
    let by_node = pods_by_node(&both);
    assert_eq!(plan(&ds, &refs, &by_node, "h", at(10), |_| false).delete, vec!["old".to_owned()]);
}
