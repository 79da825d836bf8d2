//! Which nodes need a daemon pod and which daemon pods must go (upstream's `manage` and
//! `podsShouldBeOnNode`), as a pure plan over the cached nodes and the DaemonSet's pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::placement::{should_run, target_node, template_generation};
use crate::history::POD_REVISION_LABEL;
use rkube_client::pods;

/// A DaemonSet's pods grouped by the node they are for; pods that finished and are being deleted are
/// left out (upstream's `getNodesToDaemonPods(ds, false)`).
pub(crate) fn pods_by_node(pods: &[Pod]) -> BTreeMap<String, Vec<&Pod>> {
    let mut m: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        if pods::is_terminal(p) && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = target_node(p) {
            m.entry(node).or_default().push(p);
        }
    }
    m
}

/// Scheduled pods first, then oldest first, then by name (upstream's `podByCreationTimestampAndPhase`).
pub(crate) fn sort_oldest_first(pods: &mut [&Pod]) {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    pods.sort_by(|a, b| {
        scheduled(b)
            .cmp(&scheduled(a))
            .then(
                a.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            )
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Whether a pod runs the current template: its hash label is `hash`, or its generation label is the
/// DaemonSet's template generation (upstream's `IsPodUpdated`).
pub(crate) fn is_updated(pod: &Pod, ds: &DaemonSet, hash: &str) -> bool {
    let labels = pod.labels();
    let hash_matches = !hash.is_empty() && labels.get(POD_REVISION_LABEL).map(String::as_str) == Some(hash);
    let generation_matches = template_generation(ds).is_some_and(|g| {
        labels.get(super::placement::TEMPLATE_GENERATION_LABEL).map(String::as_str) == Some(g.to_string().as_str())
    });
    hash_matches || generation_matches
}

/// Whether the DaemonSet may surge (run a new pod next to the old one on a node).
pub(crate) fn allows_surge(ds: &DaemonSet) -> bool {
    super::rolling::surge_count(ds, 1) != 0
}

/// What `manage` decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ManagePlan {
    /// Nodes to create a pod on.
    pub(crate) create_on: Vec<String>,
    /// Pods to delete.
    pub(crate) delete: Vec<String>,
    /// Failed pods to delete, with their node (each gets a `FailedDaemonPod` event and a backoff).
    pub(crate) failed: Vec<(String, String)>,
    /// A failed pod waits for its node's backoff to pass.
    pub(crate) backing_off: bool,
}

/// Plans pod creations and deletions over every node. `in_backoff(node)` says whether failed pods on that
/// node were deleted too recently to delete again.
pub(crate) fn plan(
    ds: &DaemonSet,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    now: Timestamp,
    in_backoff: impl Fn(&str) -> bool,
) -> ManagePlan {
    let mut plan = ManagePlan::default();
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let surge = allows_surge(ds);
    for node in nodes {
        let name = node.name_any();
        let (run, keep) = should_run(node, ds);
        let daemon_pods = by_node.get(&name);
        match daemon_pods {
            None if run => plan.create_on.push(name),
            Some(list) if keep => {
                let mut running: Vec<&Pod> = Vec::new();
                for p in list.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                    match pods::phase(p) {
                        "Failed" if in_backoff(&name) => plan.backing_off = true,
                        "Failed" => plan.failed.push((p.name_any(), name.clone())),
                        "Succeeded" => plan.delete.push(p.name_any()),
                        _ => running.push(p),
                    }
                }
                if running.len() <= 1 {
                    continue;
                }
                sort_oldest_first(&mut running);
                if !surge {
                    plan.delete.extend(running[1..].iter().map(|p| p.name_any()));
                    continue;
                }
                // Surging: keep the oldest new pod and the oldest old pod; the old one goes once the new
                // one is available, or at once if it is not ready anyway.
                let (mut oldest_new, mut oldest_old) = (None, None);
                for p in running {
                    let slot = if is_updated(p, ds, hash) { &mut oldest_new } else { &mut oldest_old };
                    if slot.is_none() {
                        *slot = Some(p);
                    } else {
                        plan.delete.push(p.name_any());
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                    && (!pods::is_ready(old) || pods::is_available(new, min_ready, now))
                {
                    plan.delete.push(old.name_any());
                }
            }
            Some(list) if !keep => {
                plan.delete
                    .extend(list.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).map(|p| p.name_any()));
            }
            _ => {}
        }
    }
    // Pods for nodes that no longer exist and were never scheduled can only be cleaned up here (bound
    // ones are the pod garbage collector's).
    for (node, list) in by_node {
        if nodes.iter().any(|n| n.metadata.name.as_deref() == Some(node.as_str())) {
            continue;
        }
        let unscheduled = |p: &&&Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty);
        plan.delete.extend(list.iter().filter(unscheduled).map(|p| p.name_any()));
    }
    plan
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
