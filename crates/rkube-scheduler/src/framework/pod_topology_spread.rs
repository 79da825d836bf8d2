//! PodTopologySpread: `DoNotSchedule` constraints filter out nodes where placing the pod would make the
//! matching pods' skew across topology domains exceed `maxSkew` (with `minDomains`, and the
//! `nodeAffinityPolicy: Honor` / `nodeTaintsPolicy: Ignore` defaults deciding which nodes count);
//! `ScheduleAnyway` constraints score nodes in emptier domains higher.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use kube::core::{Selector, SelectorExt};

use super::node_affinity::Required;
use super::{MAX_NODE_SCORE, Status, taint_toleration};
use crate::cache::{Cache, HOSTNAME_LABEL as HOSTNAME, NodeInfo, ZONE_LABEL};
use crate::podinfo::PodInfo;

pub(crate) const NAME: &str = "PodTopologySpread";
const CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";

/// One parsed constraint.
#[derive(Clone, Debug)]
pub(crate) struct Constraint {
    max_skew: i64,
    key: String,
    /// `None`: no label selector, matching no pod.
    selector: Option<Selector>,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

fn parse(pod: &PodInfo, when: &str) -> Result<Vec<Constraint>, String> {
    let list: &[TopologySpreadConstraint] =
        pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or(&[]);
    let mut out = Vec::new();
    for c in list.iter().filter(|c| c.when_unsatisfiable == when) {
        let selector = match &c.label_selector {
            None => None,
            Some(sel) => {
                let mut sel = sel.clone();
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(v) = pod.labels().get(key) {
                        sel.match_expressions.get_or_insert_with(Vec::new).push(LabelSelectorRequirement {
                            key: key.clone(),
                            operator: "In".into(),
                            values: Some(vec![v.clone()]),
                        });
                    }
                }
                Some(Selector::try_from(sel).map_err(|e| e.to_string())?)
            }
        };
        out.push(Constraint {
            max_skew: c.max_skew as i64,
            key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1) as i64,
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

/// Upstream's system default constraints (`defaultingType: System`) for a pod without its own: spread over
/// hostnames (maxSkew 3) and zones (maxSkew 5), scoring only, selecting the pods that the Services,
/// ReplicationControllers, ReplicaSets and StatefulSets selecting this pod select.
fn system_default(pod: &PodInfo, cache: &Cache) -> Vec<Constraint> {
    let Some(owners) = cache.owner_selectors.get(&pod.namespace) else { return Vec::new() };
    let mut selector = Selector::default();
    let mut any = false;
    for sel in owners.values().filter(|s| s.matches(pod.labels())) {
        selector.extend(sel.clone());
        any = true;
    }
    if !any || selector.selects_all() {
        return Vec::new();
    }
    [(HOSTNAME, 3), (ZONE_LABEL, 5)]
        .into_iter()
        .map(|(key, max_skew)| Constraint {
            max_skew,
            key: key.to_owned(),
            selector: Some(selector.clone()),
            min_domains: 1,
            honor_affinity: true,
            honor_taints: false,
        })
        .collect()
}

/// Whether the node counts for the constraints at all (policies, and every topology key present).
fn eligible(constraints: &[Constraint], pod: &PodInfo, required: &Required, node: &NodeInfo) -> bool {
    constraints.iter().all(|c| node.has_label(&c.key))
        && (!constraints.iter().any(|c| c.honor_affinity) || required.matches(node))
        && (!constraints.iter().any(|c| c.honor_taints) || taint_toleration::untolerated(pod, node).is_none())
}

fn count_matching(c: &Constraint, namespace: &str, node: &NodeInfo) -> i64 {
    let Some(sel) = &c.selector else { return 0 };
    if !node.has_pods_in(namespace) {
        return 0;
    }
    node.pods.iter().filter(|p| p.namespace == namespace && !p.terminating() && sel.matches(p.labels())).count() as i64
}

/// Matching pods per topology value, for each `DoNotSchedule` constraint.
#[derive(Clone, Debug, Default)]
pub(crate) struct PreFilterState {
    constraints: Vec<Constraint>,
    required: Required,
    counts: Vec<HashMap<String, i64>>,
    mins: Vec<i64>,
}

impl PreFilterState {
    pub(crate) fn new(pod: &PodInfo, required: &Required, cache: &Cache) -> Result<PreFilterState, String> {
        let constraints = parse(pod, "DoNotSchedule")?;
        let mut state = PreFilterState {
            counts: vec![HashMap::new(); constraints.len()],
            constraints,
            required: required.clone(),
            mins: Vec::new(),
        };
        if state.constraints.is_empty() {
            return Ok(state);
        }
        for node in &cache.nodes {
            if !eligible(&state.constraints, pod, required, node) {
                continue;
            }
            let labels = node.labels();
            for (i, c) in state.constraints.iter().enumerate() {
                let n = count_matching(c, &pod.namespace, node);
                *state.counts[i].entry(labels[&c.key].clone()).or_insert(0) += n;
            }
        }
        state.recompute_mins();
        Ok(state)
    }

    fn recompute_mins(&mut self) {
        self.mins = self
            .constraints
            .iter()
            .zip(&self.counts)
            .map(|(c, counts)| {
                if (counts.len() as i64) < c.min_domains {
                    0
                } else {
                    counts.values().copied().min().unwrap_or(i32::MAX as i64)
                }
            })
            .collect();
    }

    /// Accounts for `existing` joining (`d = 1`) or leaving (`d = -1`) `node`.
    pub(crate) fn update(&mut self, pod: &PodInfo, existing: &PodInfo, node: &NodeInfo, d: i64) {
        if self.constraints.is_empty()
            || existing.namespace != pod.namespace
            || !eligible(&self.constraints, pod, &self.required, node)
        {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if c.selector.as_ref().is_some_and(|s| s.matches(existing.labels())) {
                *self.counts[i].entry(node.labels()[&c.key].clone()).or_insert(0) += d;
            }
        }
        self.recompute_mins();
    }

    pub(crate) fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        // Without constraints the node's labels (a cache miss per node per pod) are not read at all.
        if self.constraints.is_empty() {
            return Ok(());
        }
        let labels = node.labels();
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.key) else {
                return Err(Status::unresolvable(NAME, format!("{CONSTRAINTS_NOT_MATCH} (missing required label)")));
            };
            let self_match = i64::from(c.selector.as_ref().is_some_and(|s| s.matches(pod.labels())));
            let count = self.counts[i].get(value).copied().unwrap_or(0);
            if count + self_match - self.mins[i] > c.max_skew {
                return Err(Status::unschedulable(NAME, CONSTRAINTS_NOT_MATCH));
            }
        }
        Ok(())
    }
}

/// `ScheduleAnyway` constraints: fewer matching pods in the node's domains (weighted by the log of the
/// number of domains) is better; nodes missing a topology key score 0.
pub(crate) fn score(pod: &PodInfo, required: &Required, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let own = pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_ref()).is_some_and(|c| !c.is_empty());
    let constraints = if own {
        let Ok(c) = parse(pod, "ScheduleAnyway") else { return vec![0; nodes.len()] };
        c
    } else {
        system_default(pod, cache)
    };
    if constraints.is_empty() {
        return vec![0; nodes.len()];
    }
    // System defaults do not require every topology key: a node missing one just skips that constraint.
    let has_key = |n: &NodeInfo, c: &Constraint| n.has_label(&c.key);
    let ignored: Vec<bool> = nodes.iter().map(|n| own && !constraints.iter().all(|c| has_key(n, c))).collect();
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); constraints.len()];
    let mut weights = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        // Hostname domains are the nodes themselves: counted per scored node below, no map needed.
        if c.key != HOSTNAME {
            for (n, _) in nodes.iter().zip(&ignored).filter(|(n, ig)| !**ig && has_key(n, c)) {
                counts[i].insert(n.labels()[&c.key].as_str(), 0);
            }
        }
        let size = if c.key == HOSTNAME { ignored.iter().filter(|i| !**i).count() } else { counts[i].len() };
        weights.push(((size + 2) as f64).ln());
    }
    // Domains other than hostnames gather the pods of every node in them; none of the scored nodes has such a
    // key (the system default's zone on unlabelled nodes) leaves nothing to gather.
    let gather = constraints.iter().enumerate().any(|(i, c)| c.key != HOSTNAME && !counts[i].is_empty());
    for node in cache.nodes.iter().filter(|_| gather) {
        let policies_ok = (!constraints.iter().any(|c| c.honor_affinity) || required.matches(node))
            && (!constraints.iter().any(|c| c.honor_taints) || taint_toleration::untolerated(pod, node).is_none());
        if !policies_ok || (own && !constraints.iter().all(|c| has_key(node, c))) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if c.key == HOSTNAME {
                continue;
            }
            let Some(v) = node.labels().get(&c.key) else { continue };
            if let Some(e) = counts[i].get_mut(v.as_str()) {
                *e += count_matching(c, &pod.namespace, node);
            }
        }
    }
    let raw: Vec<Option<i64>> = nodes
        .iter()
        .zip(&ignored)
        .map(|(n, ig)| {
            if *ig {
                return None;
            }
            let mut s = 0.0;
            for (i, c) in constraints.iter().enumerate() {
                // No scored node has a domain for this key: it adds nothing anywhere.
                if (c.key != HOSTNAME && counts[i].is_empty()) || !has_key(n, c) {
                    continue;
                }
                let cnt = if c.key == HOSTNAME {
                    count_matching(c, &pod.namespace, n)
                } else {
                    counts[i].get(n.labels()[&c.key].as_str()).copied().unwrap_or(0)
                };
                s += cnt as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            Some(s.round() as i64)
        })
        .collect();
    let valid = raw.iter().flatten();
    let (min, max) = (valid.clone().copied().min().unwrap_or(0), valid.copied().max().unwrap_or(0));
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;
    use std::sync::Arc;

    fn cluster() -> Cache {
        let mut c = Cache::default();
        for (name, zone) in [("a", "z1"), ("b", "z1"), ("c", "z2"), ("nolabel", "")] {
            let labels = if zone.is_empty() {
                json!({"kubernetes.io/hostname": name})
            } else {
                json!({"zone": zone, "kubernetes.io/hostname": name})
            };
            let n = node(name, json!({"pods": "10"}), json!({"metadata": {"labels": labels}}));
            c.upsert_node(Arc::new(n.node.as_ref().clone()));
        }
        c
    }

    fn spread(name: &str, when: &str, extra: serde_json::Value) -> Arc<PodInfo> {
        let mut c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        pod(json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": [c]}}))
    }

    fn check(p: &Arc<PodInfo>, c: &Cache, n: &str) -> Result<(), Status> {
        let req = Required::new(&p.pod);
        PreFilterState::new(p, &req, c).unwrap().filter(p, c.node(n).unwrap())
    }

    #[test]
    fn max_skew_keeps_domains_balanced() {
        let mut c = cluster();
        c.add_or_update_bound(pod(json!({"metadata": {"name": "w1", "labels": {"app": "web"}}})), "a");
        let p = spread("p", "DoNotSchedule", json!({}));
        assert_eq!(check(&p, &c, "b").unwrap_err().reasons, vec![CONSTRAINTS_NOT_MATCH]);
        assert!(check(&p, &c, "c").is_ok());
        assert_eq!(
            check(&p, &c, "nolabel").unwrap_err().reasons,
            vec![format!("{CONSTRAINTS_NOT_MATCH} (missing required label)")]
        );
        let other = pod(json!({"metadata": {"name": "x", "labels": {"app": "db"}}}));
        c.add_or_update_bound(other, "c");
        assert!(check(&p, &c, "b").is_err());
    }

    #[test]
    fn min_domains_counts_missing_domains_as_empty() {
        let mut c = cluster();
        c.add_or_update_bound(pod(json!({"metadata": {"name": "w1", "labels": {"app": "web"}}})), "a");
        c.add_or_update_bound(pod(json!({"metadata": {"name": "w2", "labels": {"app": "web"}}})), "c");
        let p = spread("p", "DoNotSchedule", json!({}));
        assert!(check(&p, &c, "b").is_ok());
        let p = spread("p", "DoNotSchedule", json!({"minDomains": 3}));
        assert!(check(&p, &c, "b").is_err());
    }

    #[test]
    fn node_affinity_policy_honor_ignores_nodes_the_pod_cannot_use() {
        let mut c = cluster();
        c.add_or_update_bound(pod(json!({"metadata": {"name": "w1", "labels": {"app": "web"}}})), "a");
        let mut p = spread("p", "DoNotSchedule", json!({})).pod.as_ref().clone();
        p.spec.as_mut().unwrap().node_selector = Some([("zone".to_owned(), "z1".to_owned())].into());
        let p = Arc::new(PodInfo::new(Arc::new(p)));
        // z2 does not count: z1 is the only domain, so any skew within it is fine.
        assert!(check(&p, &c, "b").is_ok());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let mut c = cluster();
        c.add_or_update_bound(pod(json!({"metadata": {"name": "w1", "labels": {"app": "web"}}})), "a");
        let p = spread("p", "ScheduleAnyway", json!({}));
        let req = Required::new(&p.pod);
        let nodes: Vec<&NodeInfo> = ["a", "c", "nolabel"].iter().map(|n| c.node(n).unwrap()).collect();
        let s = score(&p, &req, &c, &nodes);
        assert!(s[1] > s[0], "{s:?}");
        assert_eq!(s[2], 0);
    }

    #[test]
    fn system_defaults_spread_pods_of_one_replica_set_over_hostnames() {
        let mut c = cluster();
        let rs = Selector::try_from(
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                json!({"matchLabels": {"app": "web"}}),
            )
            .unwrap(),
        )
        .unwrap();
        c.owner_selectors.entry("default".into()).or_default().insert("ReplicaSet/web".into(), rs);
        for (i, n) in ["a", "a", "b"].iter().enumerate() {
            c.add_or_update_bound(pod(json!({"metadata": {"name": format!("w{i}"), "labels": {"app": "web"}}})), n);
        }
        let p = pod(json!({"metadata": {"name": "p", "labels": {"app": "web"}}}));
        let req = Required::new(&p.pod);
        let nodes: Vec<&NodeInfo> = ["a", "b", "c"].iter().map(|n| c.node(n).unwrap()).collect();
        let s = score(&p, &req, &c, &nodes);
        assert!(s[2] > s[1] && s[1] > s[0], "{s:?}");
        let stranger = pod(json!({"metadata": {"name": "s", "labels": {"app": "db"}}}));
        assert_eq!(score(&stranger, &req, &c, &nodes), vec![0, 0, 0]);
    }
}
