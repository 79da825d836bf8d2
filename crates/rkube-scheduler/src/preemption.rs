//! DefaultPreemption: when a pod fits nowhere, find a node where evicting lower-priority pods makes room,
//! evicting as few and as unimportant pods as upstream's `pickOneNodeForPreemption` picks (PodDisruptionBudget
//! violations first, then the highest victim priority, the priority sum, the count, the latest start).

use std::cmp::Ordering;
use std::sync::Arc;

use kube::core::{Selector, SelectorExt};

use crate::cache::Cache;
use crate::diagnosis::{Diagnosis, fit_error, histogram};
use crate::framework::{Code, CycleState, Status};
use crate::podinfo::PodInfo;
use crate::schedule::{Nominations, Picker, filter_with_nominated};

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
const NAME: &str = "DefaultPreemption";
/// Upstream's `minCandidateNodesPercentage` and `minCandidateNodesAbsolute`.
const MIN_CANDIDATES_PERCENTAGE: usize = 10;
const MIN_CANDIDATES_ABSOLUTE: usize = 100;

/// A PodDisruptionBudget as preemption reads it.
#[derive(Clone, Debug)]
pub(crate) struct Pdb {
    pub(crate) namespace: String,
    pub(crate) selector: Option<Selector>,
    pub(crate) disruptions_allowed: i32,
}

/// A node where preemption makes the pod fit, and whom it evicts.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) node: String,
    pub(crate) victims: Vec<Arc<PodInfo>>,
    pub(crate) pdb_violations: usize,
}

/// Upstream's `MoreImportantPod`: higher priority, then the earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority.cmp(&a.priority).then_with(|| match (a.start_time(), b.start_time()) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    })
}

/// Why the pod may not preempt at all (upstream's `PodEligibleToPreemptOthers`).
pub(crate) fn ineligible(pod: &PodInfo, cache: &Cache, diagnosis: &Diagnosis) -> Option<&'static str> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never.");
    }
    let nominated = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty())?;
    if diagnosis.statuses.get(nominated).is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable) {
        return None;
    }
    let node = cache.node(nominated)?;
    node.pods
        .iter()
        .any(|p| p.priority < pod.priority && p.terminating())
        .then_some("not eligible due to a terminating pod on the nominated node.")
}

/// Picks which pods to evict on one node, or why preemption cannot help there.
fn select_victims(
    state: &CycleState,
    node_index: usize,
    cache: &Cache,
    nominations: &Nominations,
    pdbs: &[Pdb],
) -> Result<Candidate, Status> {
    let pod = &state.pod;
    let original = &cache.nodes[node_index];
    let mut potential: Vec<Arc<PodInfo>> =
        original.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NAME, NO_VICTIMS));
    }
    let mut node = original.clone();
    let mut state = state.clone();
    for p in &potential {
        node.remove_pod(&p.uid);
        state.remove_pod(p, &node, cache);
    }
    filter_with_nominated(&state, &node, nominations, cache)?;
    potential.sort_by(|a, b| more_important(a, b));
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut non_violating) = (Vec::new(), Vec::new());
    for p in potential {
        let mut violates = false;
        for (i, pdb) in pdbs.iter().enumerate() {
            if pdb.namespace == p.namespace && pdb.selector.as_ref().is_some_and(|s| s.matches(p.labels())) {
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violates = true;
                }
            }
        }
        if violates { violating.push(p) } else { non_violating.push(p) }
    }
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (group, counts) in [(violating, true), (non_violating, false)] {
        for p in group {
            node.add_pod(p.clone());
            state.add_pod(&p, &node, cache);
            if filter_with_nominated(&state, &node, nominations, cache).is_err() {
                node.remove_pod(&p.uid);
                state.remove_pod(&p, &node, cache);
                if counts {
                    pdb_violations += 1;
                }
                victims.push(p);
            }
        }
    }
    victims.sort_by(|a, b| more_important(a, b));
    Ok(Candidate { node: node.name.clone(), victims, pdb_violations })
}

/// Chooses among candidates as upstream's `pickOneNodeForPreemption`.
pub(crate) fn pick(candidates: &[Candidate]) -> Option<&Candidate> {
    let offset = (i32::MAX as i64) + 1;
    let key = |c: &Candidate| {
        let highest = c.victims.first().map_or(i32::MIN, |v| v.priority);
        let sum: i64 = c.victims.iter().map(|v| v.priority as i64 + offset).sum();
        // The latest start among the highest-priority victims (later is better: they lost less work).
        let earliest_top = c.victims.iter().filter(|v| v.priority == highest).filter_map(|v| v.start_time()).min();
        (c.pdb_violations, highest, sum, c.victims.len(), std::cmp::Reverse(earliest_top))
    };
    candidates.iter().min_by(|a, b| key(a).cmp(&key(b)))
}

/// Runs preemption for a pod that fits nowhere: the chosen candidate, or the post-filter message.
pub(crate) fn preempt(
    state: &CycleState,
    cache: &Cache,
    diagnosis: &Diagnosis,
    nominations: &Nominations,
    pdbs: &[Pdb],
    picker: &mut Picker,
) -> Result<Candidate, String> {
    if let Some(msg) = ineligible(&state.pod, cache, diagnosis) {
        return Err(msg.to_owned());
    }
    let mut statuses: Vec<Status> = Vec::new();
    let mut potential = Vec::new();
    for (i, node) in cache.nodes.iter().enumerate() {
        match diagnosis.statuses.get(&node.name) {
            Some(s) if s.code == Code::UnschedulableAndUnresolvable => {
                statuses.push(Status::unresolvable(NAME, NOT_HELPFUL));
            }
            _ => potential.push(i),
        }
    }
    let want = (potential.len() * MIN_CANDIDATES_PERCENTAGE / 100).max(MIN_CANDIDATES_ABSOLUTE);
    let mut candidates = Vec::new();
    if !potential.is_empty() {
        let offset = (picker.random() % potential.len() as u64) as usize;
        for k in 0..potential.len() {
            let i = potential[(offset + k) % potential.len()];
            match select_victims(state, i, cache, nominations, pdbs) {
                Ok(c) => {
                    candidates.push(c);
                    if candidates.iter().filter(|c| c.pdb_violations == 0).count() >= want {
                        break;
                    }
                }
                Err(s) => statuses.push(s),
            }
        }
    }
    match pick(&candidates) {
        Some(c) => Ok(c.clone()),
        None => Err(format!("preemption: {}", fit_error(cache.nodes.len(), None, &histogram(statuses.iter()), ""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use crate::schedule::schedule;
    use serde_json::json;

    fn p(name: &str, priority: i32, cpu: &str, extra: serde_json::Value) -> Arc<PodInfo> {
        let mut spec =
            json!({"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        pod(json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}))
    }

    fn cluster(nodes: &[&str]) -> Cache {
        let mut c = Cache::default();
        for name in nodes {
            let n = node(name, json!({"cpu": "4", "memory": "8Gi", "pods": "10"}), json!({}));
            c.upsert_node(Arc::new(n.node.as_ref().clone()));
        }
        c
    }

    fn run(c: &Cache, preemptor: &Arc<PodInfo>, pdbs: &[Pdb]) -> Result<Candidate, String> {
        let mut picker = Picker::new(3);
        let d = schedule(preemptor, c, &Nominations::new(), &mut picker).unwrap_err();
        let state = CycleState::new(preemptor.clone(), c).unwrap();
        preempt(&state, c, &d, &Nominations::new(), pdbs, &mut picker)
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut c = cluster(&["a", "b"]);
        c.add_or_update_bound(p("a1", 10, "2", json!({})), "a");
        c.add_or_update_bound(p("a2", 10, "2", json!({})), "a");
        c.add_or_update_bound(p("b1", 5, "3", json!({})), "b");
        c.add_or_update_bound(p("b2", 100, "1", json!({})), "b");
        let big = p("big", 50, "3", json!({}));
        let cand = run(&c, &big, &[]).unwrap();
        assert_eq!(cand.node, "b");
        assert_eq!(cand.victims.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), vec!["b1"]);
    }

    #[test]
    fn prefers_nodes_without_pdb_violations() {
        let mut c = cluster(&["a", "b"]);
        c.add_or_update_bound(p("a1", 1, "4", json!({})), "a");
        c.add_or_update_bound(p("b1", 5, "4", json!({})), "b");
        let big = p("big", 50, "4", json!({}));
        assert_eq!(run(&c, &big, &[]).unwrap().node, "a");
        let pdb = Pdb {
            namespace: "default".into(),
            selector: Some(
                Selector::try_from(
                    serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                        json!({"matchLabels": {"app": "a1"}}),
                    )
                    .unwrap(),
                )
                .unwrap(),
            ),
            disruptions_allowed: 0,
        };
        assert_eq!(run(&c, &big, &[pdb]).unwrap().node, "b");
    }

    #[test]
    fn explains_when_preemption_cannot_help() {
        let mut c = cluster(&["a", "b", "c"]);
        let t = node(
            "c",
            json!({"cpu": "4", "memory": "8Gi", "pods": "10"}),
            json!({"spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}),
        );
        c.upsert_node(Arc::new(t.node.as_ref().clone()));
        c.add_or_update_bound(p("a1", 100, "4", json!({})), "a");
        let big = p("big", 50, "8", json!({}));
        assert_eq!(
            run(&c, &big, &[]).unwrap_err(),
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
        );
        c.add_or_update_bound(p("b1", 1, "1", json!({})), "b");
        assert_eq!(
            run(&c, &big, &[]).unwrap_err(),
            "preemption: 0/3 nodes are available: 1 Insufficient cpu, 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
        let never = p("never", 50, "8", json!({"preemptionPolicy": "Never"}));
        assert_eq!(run(&c, &never, &[]).unwrap_err(), "not eligible due to preemptionPolicy=Never.");
    }
}
