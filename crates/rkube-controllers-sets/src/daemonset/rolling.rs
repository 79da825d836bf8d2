//! RollingUpdate of a DaemonSet as upstream's `rollingUpdate`: without surge, delete old pods (replaced by
//! `manage` on the next pass) while at most `maxUnavailable` nodes lack an available pod; with surge, start
//! new pods next to old ones on at most `maxSurge` nodes and delete each old pod once its replacement is
//! available.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::manage::is_updated;
use super::placement::should_run;
use crate::intstr::scaled;
use rkube_client::pods;

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    let s = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if s.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    s.rolling_update.as_ref()
}

/// `maxUnavailable` against `desired` nodes, rounded up (upstream's `UnavailableCount`).
pub(crate) fn unavailable_count(ds: &DaemonSet, desired: i32) -> i32 {
    rolling(ds).and_then(|r| r.max_unavailable.as_ref()).and_then(|v| scaled(v, desired, true)).unwrap_or(0)
}

/// `maxSurge` against `desired` nodes, rounded up (upstream's `SurgeCount`).
pub(crate) fn surge_count(ds: &DaemonSet, desired: i32) -> i32 {
    rolling(ds).and_then(|r| r.max_surge.as_ref()).and_then(|v| scaled(v, desired, true)).unwrap_or(0)
}

/// The one new and one old pod on a node, or `None` when there are more (upstream's
/// `findUpdatedPodsOnNode`).
fn new_and_old<'a>(ds: &DaemonSet, pods: &[&'a Pod], hash: &str) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if is_updated(p, ds, hash) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

/// What one rolling-update pass decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RollPlan {
    /// Old pods to delete.
    pub(crate) delete: Vec<String>,
    /// Nodes to start a new pod on next to the old one (surge).
    pub(crate) create_on: Vec<String>,
}

/// Plans one pass of the rolling update.
pub(crate) fn plan(
    ds: &DaemonSet,
    nodes: &[&Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    now: Timestamp,
) -> RollPlan {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let available = |p: &Pod| pods::is_available(p, min_ready, now);
    // Every node that should run a pod takes part, with or without pods.
    let mut per_node: BTreeMap<String, Vec<&Pod>> = by_node.clone();
    let mut desired = 0;
    for n in nodes {
        if should_run(n, ds).0 {
            desired += 1;
            per_node.entry(n.name_any()).or_default();
        }
    }
    let max_surge = surge_count(ds, desired);
    let mut max_unavailable = unavailable_count(ds, desired);
    if desired > 0 && max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let mut out = RollPlan::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let (mut replace, mut candidates) = (Vec::new(), Vec::new());
        for (_, list) in per_node.iter() {
            let Some((new, old)) = new_and_old(ds, list, hash) else {
                unavailable += 1; // excess pods: manage cleans the node up
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => unavailable += i32::from(!available(new)),
                (None, Some(old)) if !available(old) => {
                    replace.push(old.name_any());
                    unavailable += 1;
                }
                (None, Some(_)) if unavailable >= max_unavailable => {}
                (None, Some(old)) => candidates.push(old.name_any()),
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0).min(candidates.len());
        out.delete = replace;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }
    let (mut surging, mut available_count) = (0, 0);
    let (mut allowed, mut candidates, mut not_wanted) = (Vec::new(), Vec::new(), Vec::new());
    for (node_name, list) in per_node.iter() {
        let Some((new, old)) = new_and_old(ds, list, hash) else {
            surging += 1;
            continue;
        };
        if old.is_some_and(available) || new.is_some_and(available) {
            available_count += 1;
        }
        let wanted = || {
            nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node_name)).is_some_and(|n| should_run(n, ds).0)
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !wanted() => not_wanted.push(old.name_any()),
            (None, Some(old)) if !available(old) => allowed.push(node_name.clone()),
            (None, Some(_)) if surging >= max_surge => {}
            (None, Some(_)) => candidates.push(node_name.clone()),
            (Some(new), Some(_)) if !available(new) => surging += 1,
            (Some(_), Some(old)) => out.delete.push(old.name_any()),
        }
    }
    // With surge the owner expects full availability: pods on nodes that should no longer run one go only
    // as far as more pods are available than desired.
    let deletable = usize::try_from(available_count - desired).unwrap_or(0).min(not_wanted.len());
    out.delete.extend(not_wanted.into_iter().take(deletable));
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0).min(candidates.len());
    out.create_on = allowed;
    out.create_on.extend(candidates.into_iter().take(room));
    out
}

#[cfg(test)]
#[path = "rolling_tests.rs"]
mod tests;
