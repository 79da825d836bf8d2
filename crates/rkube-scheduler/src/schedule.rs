//! One scheduling attempt, as upstream's `schedulePod`: filter nodes from a rotating start until enough
//! feasible ones are found (percentageOfNodesToScore's adaptive rule), score them, pick the best (ties at
//! random); or a [`Diagnosis`] of why no node fits.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::diagnosis::Diagnosis;
use crate::framework::{CycleState, Status, run_filters, run_scores};
use crate::podinfo::PodInfo;

/// Upstream's message when the cluster has no node at all.
pub(crate) const NO_NODES: &str = "no nodes available to schedule pods";

/// Below this many nodes every node is examined.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes are enough: all of a small cluster, else 50% minus 1% per 125 nodes, at least 5%
/// and at least 100 nodes.
pub(crate) fn num_feasible_nodes_to_find(num_all: usize) -> usize {
    if num_all < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all;
    }
    let percentage = 50usize.saturating_sub(num_all / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (num_all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Pods nominated to nodes by preemption, which other pods of no higher priority must leave room for.
pub(crate) type Nominations = HashMap<String, Vec<Arc<PodInfo>>>;

/// The scheduler's mutable iteration state.
pub(crate) struct Picker {
    next_start: usize,
    rng: u64,
}

impl Picker {
    pub(crate) fn new(seed: u64) -> Picker {
        Picker { next_start: 0, rng: seed | 1 }
    }

    pub(crate) fn random(&mut self) -> u64 {
        // xorshift64*: tie-breaking only needs to be unbiased, not secure.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs the filters on `node`, with the nominated pods of at least the pod's priority placed there too.
pub(crate) fn filter_with_nominated(
    state: &CycleState,
    node: &NodeInfo,
    nominations: &Nominations,
    cache: &Cache,
) -> Result<(), Status> {
    let pod = &state.pod;
    let nominated: Vec<&Arc<PodInfo>> = nominations
        .get(&node.name)
        .into_iter()
        .flatten()
        .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
        .collect();
    if nominated.is_empty() {
        return run_filters(state, node);
    }
    let mut with = node.clone();
    let mut st = state.clone();
    for p in nominated {
        with.add_pod(p.clone());
        st.add_pod(p, &with, cache);
    }
    run_filters(&st, &with)?;
    run_filters(state, node)
}

/// Picks a node index for the pod, or says why none fits.
pub(crate) fn schedule(
    pod: &Arc<PodInfo>,
    cache: &Cache,
    nominations: &Nominations,
    picker: &mut Picker,
) -> Result<usize, Diagnosis> {
    let n = cache.nodes.len();
    let mut diagnosis = Diagnosis { num_all_nodes: n, ..Diagnosis::default() };
    if n == 0 {
        return Err(diagnosis);
    }
    let state = match CycleState::new(pod.clone(), cache) {
        Ok(s) => s,
        Err(status) => {
            for node in &cache.nodes {
                diagnosis.statuses.insert(node.name.clone(), status.clone());
            }
            diagnosis.pre_filter = Some(status);
            return Err(diagnosis);
        }
    };
    // A pod nominated by an earlier preemption tries its node first.
    let nominated =
        pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).and_then(|n| cache.node_index(n));
    if let Some(i) = nominated
        && filter_with_nominated(&state, &cache.nodes[i], nominations, cache).is_ok()
    {
        return Ok(i);
    }
    let want = num_feasible_nodes_to_find(n);
    let mut feasible = Vec::with_capacity(want.min(n));
    let start = picker.next_start % n;
    let mut processed = 0;
    for k in 0..n {
        let i = (start + k) % n;
        processed += 1;
        let node = &cache.nodes[i];
        match filter_with_nominated(&state, node, nominations, cache) {
            Ok(()) => {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(status) => {
                diagnosis.statuses.insert(node.name.clone(), status);
            }
        }
    }
    picker.next_start = (start + processed) % n;
    match feasible.len() {
        0 => Err(diagnosis),
        1 => Ok(feasible[0]),
        _ => {
            let scores = run_scores(&state, cache, &feasible);
            Ok(select_host(&feasible, &scores, picker))
        }
    }
}

/// The highest-scoring node; ties broken uniformly at random (reservoir sampling, as upstream).
fn select_host(feasible: &[usize], scores: &[i64], picker: &mut Picker) -> usize {
    let mut best = feasible[0];
    let mut best_score = scores[0];
    let mut ties = 1u64;
    for (i, s) in feasible.iter().zip(scores).skip(1) {
        if *s > best_score {
            best = *i;
            best_score = *s;
            ties = 1;
        } else if *s == best_score {
            ties += 1;
            if picker.random().is_multiple_of(ties) {
                best = *i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(num_feasible_nodes_to_find(50), 50);
        assert_eq!(num_feasible_nodes_to_find(100), 100);
        assert_eq!(num_feasible_nodes_to_find(1000), 420);
        assert_eq!(num_feasible_nodes_to_find(5000), 500);
        assert_eq!(num_feasible_nodes_to_find(6000), 300);
        assert_eq!(num_feasible_nodes_to_find(100_000), 5000);
    }

    fn cache(nodes: &[(&str, &str)]) -> Cache {
        let mut c = Cache::default();
        for (name, cpu) in nodes {
            let n = node(name, json!({"cpu": cpu, "memory": "8Gi", "pods": "10"}), json!({}));
            c.upsert_node(Arc::new(n.node.as_ref().clone()));
        }
        c
    }

    #[test]
    fn picks_the_node_that_fits_and_explains_when_none_does() {
        let c = cache(&[("small", "1"), ("big", "8")]);
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "4"}}}]}}));
        let mut picker = Picker::new(7);
        assert_eq!(c.nodes[schedule(&p, &c, &Nominations::new(), &mut picker).unwrap()].name, "big");
        let huge = pod(json!({"metadata": {"name": "h"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "64"}}}]}}));
        let d = schedule(&huge, &c, &Nominations::new(), &mut picker).unwrap_err();
        assert_eq!(d.message(""), "0/2 nodes are available: 2 Insufficient cpu.");
    }

    #[test]
    fn least_allocated_spreads_pods_and_nominations_hold_room() {
        let mut c = cache(&[("a", "4"), ("b", "4")]);
        let p = |n: &str| {
            pod(json!({"metadata": {"name": n}, "spec": {"containers": [
                {"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}}))
        };
        let mut picker = Picker::new(1);
        let first = schedule(&p("1"), &c, &Nominations::new(), &mut picker).unwrap();
        let name = c.nodes[first].name.clone();
        c.assume(p("1"), &name);
        let second = schedule(&p("2"), &c, &Nominations::new(), &mut picker).unwrap();
        assert_ne!(c.nodes[second].name, name);
        // A high-priority pod nominated to the other node keeps lower-priority pods off it.
        let other = c.nodes[second].name.clone();
        let mut noms = Nominations::new();
        let big = pod(json!({"metadata": {"name": "big"}, "spec": {"priority": 10, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": "3"}}}]}}));
        noms.insert(other.clone(), vec![big]);
        assert_eq!(c.nodes[schedule(&p("3"), &c, &noms, &mut picker).unwrap()].name, name);
    }
}

#[cfg(test)]
mod throughput {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    /// The decision loop alone (no API): 10k simple pods onto 5000 nodes. Run with
    /// `cargo test -p rkube-scheduler --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore]
    fn ten_thousand_pods_on_five_thousand_nodes() {
        let mut c = Cache::default();
        for i in 0..5000 {
            let n = node(
                &format!("sim-{i}"),
                json!({"cpu": "32", "memory": "256Gi", "pods": "110"}),
                json!({"metadata": {"labels": {"kubernetes.io/hostname": format!("sim-{i}"), "zone": format!("z{}", i % 3)}}}),
            );
            c.upsert_node(Arc::new(n.node.as_ref().clone()));
        }
        let pods: Vec<Arc<PodInfo>> = (0..10_000)
            .map(|i| {
                pod(json!({"metadata": {"name": format!("p-{i}"), "labels": {"app": "x"}}, "spec": {"containers": [
                    {"name": "c", "image": "pause", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}))
            })
            .collect();
        let mut picker = Picker::new(42);
        let noms = Nominations::new();
        let start = std::time::Instant::now();
        for p in pods {
            let i = schedule(&p, &c, &noms, &mut picker).expect("fits");
            let name = c.nodes[i].name.clone();
            c.assume(p, &name);
        }
        let took = start.elapsed();
        let per_sec = 10_000.0 / took.as_secs_f64();
        eprintln!("10000 pods on 5000 nodes in {took:?}: {per_sec:.0} pods/s");
        let max = c.nodes.iter().map(|n| n.pods.len()).max().unwrap_or(0);
        assert!(max <= 4, "least-allocated spreads pods: max {max} per node");
    }
}
