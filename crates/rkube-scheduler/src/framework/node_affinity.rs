//! NodeAffinity: the pod's `nodeSelector` and required node affinity (label expressions and `matchFields`
//! on `metadata.name`) must match the node; preferred terms add their weights to the score.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod};

use super::{Status, default_normalize};
use crate::cache::NodeInfo;

pub(crate) const NAME: &str = "NodeAffinity";
const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// The pod's hard node constraints (also what PodTopologySpread's `nodeAffinityPolicy: Honor` applies).
#[derive(Clone, Debug, Default)]
pub(crate) struct Required {
    selector: BTreeMap<String, String>,
    /// `None`: no required affinity; `Some(terms)`: one of them must match.
    terms: Option<Vec<NodeSelectorTerm>>,
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [want]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else { return false };
            let Ok(want) = want.parse::<i64>() else { return false };
            if r.operator == "Gt" { v > want } else { v < want }
        }
        _ => false,
    }
}

/// Whether one node selector term (its expressions and fields ANDed) matches; an empty term matches nothing.
pub(crate) fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.labels();
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name.as_str())))
}

impl Required {
    pub(crate) fn new(pod: &Pod) -> Required {
        let spec = pod.spec.as_ref();
        let selector = spec.and_then(|s| s.node_selector.clone()).unwrap_or_default();
        let terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|r| r.node_selector_terms.clone());
        Required { selector, terms }
    }

    /// Whether the node satisfies the pod's nodeSelector and required affinity.
    pub(crate) fn matches(&self, node: &NodeInfo) -> bool {
        // Most pods have neither: then the node's labels, a cache miss per node, are not read at all.
        if self.selector.is_empty() && self.terms.is_none() {
            return true;
        }
        let labels = node.labels();
        self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.terms.as_ref().is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)))
    }

    pub(crate) fn filter(&self, node: &NodeInfo) -> Result<(), Status> {
        if self.matches(node) { Ok(()) } else { Err(Status::unresolvable(NAME, REASON)) }
    }

    /// Sum of the weights of the preferred terms each node matches, normalized.
    pub(crate) fn score(&self, pod: &Pod, nodes: &[&NodeInfo]) -> Vec<i64> {
        let preferred = pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or(&[]);
        if preferred.is_empty() {
            return vec![0; nodes.len()];
        }
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| {
                preferred
                    .iter()
                    .filter(|p| p.weight != 0 && term_matches(&p.preference, n))
                    .map(|p| p.weight as i64)
                    .sum()
            })
            .collect();
        default_normalize(&mut scores, false);
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use serde_json::json;

    fn req(spec: serde_json::Value) -> (Required, Pod) {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c"}]);
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
        (Required::new(&pod), pod)
    }

    fn labelled(name: &str, labels: serde_json::Value) -> NodeInfo {
        node(name, json!({}), json!({"metadata": {"labels": labels}}))
    }

    #[test]
    fn node_selector_must_match_every_label() {
        let (r, _) = req(json!({"nodeSelector": {"disk": "ssd", "zone": "a"}}));
        assert!(r.filter(&labelled("n", json!({"disk": "ssd", "zone": "a", "x": "y"}))).is_ok());
        assert_eq!(r.filter(&labelled("n", json!({"disk": "ssd"}))).unwrap_err().reasons, vec![REASON]);
    }

    #[test]
    fn required_terms_are_ored_and_expressions_anded() {
        let (r, _) = req(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                  {"key": "gpu", "operator": "DoesNotExist"}]},
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}
        ]}}}}));
        assert!(r.matches(&labelled("n", json!({"zone": "a"}))));
        assert!(!r.matches(&labelled("n", json!({"zone": "a", "gpu": "1"}))));
        assert!(!r.matches(&labelled("n", json!({"zone": "c"}))));
        assert!(r.matches(&labelled("n", json!({"cores": "16"}))));
        assert!(!r.matches(&labelled("n", json!({"cores": "8"}))));
        assert!(r.matches(&labelled("special", json!({}))));
        let (empty, _) = req(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{}]}}}}));
        assert!(!empty.matches(&labelled("n", json!({}))));
    }

    #[test]
    fn preferred_terms_weight_the_score() {
        let (r, pod) = req(json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}
        ]}}}));
        let a = labelled("a", json!({"zone": "a"}));
        let b = labelled("b", json!({"zone": "a", "disk": "ssd"}));
        let c = labelled("c", json!({}));
        assert_eq!(r.score(&pod, &[&a, &b, &c]), vec![25, 100, 0]);
    }
}
