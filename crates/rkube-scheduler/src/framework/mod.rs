//! The scheduling framework: the default profile's plugins (one module each), the per-cycle state their
//! PreFilter steps compute, and the filter and score pipelines in upstream's plugin order and weights.

pub(crate) mod balanced_allocation;
pub(crate) mod image_locality;
pub(crate) mod inter_pod_affinity;
pub(crate) mod node_affinity;
pub(crate) mod node_name;
pub(crate) mod node_ports;
pub(crate) mod node_resources_fit;
pub(crate) mod node_unschedulable;
pub(crate) mod pod_topology_spread;
pub(crate) mod taint_toleration;

use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::podinfo::PodInfo;

/// Upstream's largest node score.
pub(crate) const MAX_NODE_SCORE: i64 = 100;

/// How a filter rejects a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    /// The node does not fit now but might after preemption.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
}

/// A filter's verdict on one node: its reasons (as they appear in the FailedScheduling message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: Code,
    pub(crate) reasons: Vec<String>,
    pub(crate) plugin: &'static str,
}

impl Status {
    pub(crate) fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status { code: Code::Unschedulable, reasons: vec![reason.into()], plugin }
    }

    pub(crate) fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()], plugin }
    }
}

/// What the PreFilter steps computed for one pod in one cycle; cloned for preemption's what-if runs,
/// where `add_pod`/`remove_pod` keep it in step with a node whose pods change (upstream's
/// PreFilterExtensions).
#[derive(Clone)]
pub(crate) struct CycleState {
    pub(crate) pod: Arc<PodInfo>,
    pub(crate) node_affinity: node_affinity::Required,
    pub(crate) inter_pod: inter_pod_affinity::PreFilterState,
    pub(crate) spread: pod_topology_spread::PreFilterState,
}

impl CycleState {
    /// Runs the PreFilter steps; `Err` is a status that rejects every node (a selector that does not parse).
    pub(crate) fn new(pod: Arc<PodInfo>, cache: &Cache) -> Result<CycleState, Status> {
        if let Some(e) = &pod.invalid {
            return Err(Status::unresolvable(inter_pod_affinity::NAME, e.clone()));
        }
        let node_affinity = node_affinity::Required::new(&pod.pod);
        let inter_pod = inter_pod_affinity::PreFilterState::new(&pod, cache);
        let spread = pod_topology_spread::PreFilterState::new(&pod, &node_affinity, cache)
            .map_err(|e| Status::unresolvable(pod_topology_spread::NAME, e))?;
        Ok(CycleState { pod, node_affinity, inter_pod, spread })
    }

    /// Updates the state for `pod` joining `node` (preemption's reprieve).
    pub(crate) fn add_pod(&mut self, pod: &PodInfo, node: &NodeInfo, cache: &Cache) {
        self.inter_pod.update(&self.pod, pod, node, cache, 1);
        self.spread.update(&self.pod, pod, node, 1);
    }

    /// Updates the state for `pod` leaving `node` (preemption's victims).
    pub(crate) fn remove_pod(&mut self, pod: &PodInfo, node: &NodeInfo, cache: &Cache) {
        self.inter_pod.update(&self.pod, pod, node, cache, -1);
        self.spread.update(&self.pod, pod, node, -1);
    }
}

/// Runs the filters in upstream's order; the first that rejects the node decides.
pub(crate) fn run_filters(state: &CycleState, node: &NodeInfo) -> Result<(), Status> {
    let pod = &state.pod;
    node_unschedulable::filter(pod, node)?;
    node_name::filter(pod, node)?;
    taint_toleration::filter(pod, node)?;
    state.node_affinity.filter(node)?;
    node_ports::filter(pod, node)?;
    node_resources_fit::filter(pod, node)?;
    state.inter_pod.filter(pod, node)?;
    state.spread.filter(pod, node)?;
    Ok(())
}

/// Scores the feasible nodes (indices into the cache) with the default profile's weights.
pub(crate) fn run_scores(state: &CycleState, cache: &Cache, feasible: &[usize]) -> Vec<i64> {
    let nodes: Vec<&NodeInfo> = feasible.iter().map(|i| &cache.nodes[*i]).collect();
    let pod = &state.pod;
    let mut total = vec![0i64; nodes.len()];
    let mut add = |scores: Vec<i64>, weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    add(taint_toleration::score(pod, &nodes), 3);
    add(state.node_affinity.score(&pod.pod, &nodes), 2);
    add(nodes.iter().map(|n| node_resources_fit::least_allocated(pod, n)).collect(), 1);
    add(pod_topology_spread::score(pod, &state.node_affinity, cache, &nodes), 2);
    add(inter_pod_affinity::score(pod, cache, &nodes), 2);
    add(nodes.iter().map(|n| balanced_allocation::score(pod, n)).collect(), 1);
    add(image_locality::score(pod, cache, &nodes), 1);
    total
}

/// Upstream's `DefaultNormalizeScore`: scales to 0..100 by the largest score, reversed when asked.
pub(crate) fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_scales_by_the_largest_and_reverses() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }
}
