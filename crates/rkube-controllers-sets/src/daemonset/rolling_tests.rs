//! Rolling-update arithmetic.

use super::*;
use crate::daemonset::fixtures::{at, daemonset, nodes, pod};
use crate::daemonset::manage::pods_by_node;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn counts_scale_percentages_up() {
    let ds = daemonset(Some(IntOrString::String("25%".into())), Some(IntOrString::String("10%".into())));
    assert_eq!(unavailable_count(&ds, 5), 2);
    assert_eq!(surge_count(&ds, 5), 1);
    assert_eq!(unavailable_count(&daemonset(None, None), 5), 0);
}

#[test]
fn without_surge_deletes_up_to_max_unavailable_old_pods() {
    let ns = nodes(5);
    let refs: Vec<&Node> = ns.iter().collect();
    let ds = daemonset(Some(IntOrString::Int(2)), None);
    let pods: Vec<Pod> = (0..5).map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", 1, Some(1))).collect();
    let by_node = pods_by_node(&pods);
    let p = plan(&ds, &refs, &by_node, "new", at(100));
    assert_eq!(p.delete, vec!["p0".to_owned(), "p1".to_owned()]);
    assert!(p.create_on.is_empty());
    // One node already runs an unavailable new pod: only one more old pod may go.
    let mut pods = pods;
    pods[0] = pod("q0", "n0", "new", 99, None);
    let by_node = pods_by_node(&pods);
    assert_eq!(plan(&ds, &refs, &by_node, "new", at(100)).delete, vec!["p1".to_owned()]);
    // Unavailable old pods are replaced whatever the budget.
    let mut pods: Vec<Pod> = (0..5).map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", 1, None)).collect();
    pods[4] = pod("p4", "n4", "old", 1, Some(1));
    let by_node = pods_by_node(&pods);
    assert_eq!(plan(&ds, &refs, &by_node, "new", at(100)).delete.len(), 4);
    // Zero for both budgets means one at a time.
    let ds0 = daemonset(Some(IntOrString::Int(0)), None);
    let pods: Vec<Pod> = (0..5).map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", 1, Some(1))).collect();
    let by_node = pods_by_node(&pods);
    assert_eq!(plan(&ds0, &refs, &by_node, "new", at(100)).delete.len(), 1);
}

#[test]
fn with_surge_starts_new_pods_then_deletes_old_ones() {
    let ns = nodes(3);
    let refs: Vec<&Node> = ns.iter().collect();
    let ds = daemonset(Some(IntOrString::Int(0)), Some(IntOrString::Int(1)));
    let pods: Vec<Pod> = (0..3).map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", 1, Some(1))).collect();
    let by_node = pods_by_node(&pods);
    let p = plan(&ds, &refs, &by_node, "new", at(100));
    assert_eq!(p.create_on, vec!["n0".to_owned()]);
    assert!(p.delete.is_empty());
    // The surge pod on n0 is not available yet: no more surge, nothing deleted.
    let mut with_new = pods.clone();
    with_new.push(pod("s0", "n0", "new", 50, None));
    let by_node = pods_by_node(&with_new);
    let p = plan(&ds, &refs, &by_node, "new", at(100));
    assert!(p.create_on.is_empty() && p.delete.is_empty());
    // Available: the old pod on n0 goes and n1 may surge.
    let mut with_new = pods;
    with_new.push(pod("s0", "n0", "new", 50, Some(60)));
    let by_node = pods_by_node(&with_new);
    let p = plan(&ds, &refs, &by_node, "new", at(100));
    assert_eq!(p.delete, vec!["p0".to_owned()]);
    assert_eq!(p.create_on, vec!["n1".to_owned()]);
}
