//! TaintToleration: a node's NoSchedule and NoExecute taints keep off pods that do not tolerate them;
//! untolerated PreferNoSchedule taints lower the node's score.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::{Status, default_normalize};
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const NAME: &str = "TaintToleration";

pub(crate) use rkube_client::pods::tolerates;

/// Whether any of `tolerations` tolerates `taint`.
pub(crate) fn tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[])
}

fn taints(node: &NodeInfo) -> &[Taint] {
    if !node.has_taints {
        return &[];
    }
    node.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or(&[])
}

/// The first NoSchedule/NoExecute taint of `node` the pod does not tolerate.
pub(crate) fn untolerated<'a>(pod: &PodInfo, node: &'a NodeInfo) -> Option<&'a Taint> {
    let tols = tolerations(pod);
    taints(node).iter().find(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(t, tols))
}

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    match untolerated(pod, node) {
        None => Ok(()),
        Some(t) => Err(Status::unresolvable(
            NAME,
            format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or("")),
        )),
    }
}

/// Counts untolerated PreferNoSchedule taints (only tolerations with an empty or PreferNoSchedule effect count),
/// normalized so that fewer is better.
pub(crate) fn score(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let tols: Vec<&Toleration> = tolerations(pod)
        .iter()
        .filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule"))
        .collect();
    let mut scores: Vec<i64> = nodes
        .iter()
        .map(|n| {
            taints(n)
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule" && !tols.iter().any(|tol| tolerates(tol, t)))
                .count() as i64
        })
        .collect();
    default_normalize(&mut scores, true);
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    fn tainted(name: &str, taints: serde_json::Value) -> NodeInfo {
        node(name, json!({}), json!({"spec": {"taints": taints}}))
    }

    #[test]
    fn untolerated_no_schedule_and_no_execute_taints_reject() {
        let n = tainted("n", json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]));
        let p = pod(json!({"metadata": {"name": "a"}}));
        assert_eq!(
            filter(&p, &n).unwrap_err().reasons,
            vec!["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
        );
        let n = tainted("n", json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
        assert_eq!(filter(&p, &n).unwrap_err().reasons, vec!["node(s) had untolerated taint {dedicated: gpu}"]);
        let ok = pod(json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}));
        assert!(filter(&ok, &n).is_ok());
        let wrong_value = pod(json!({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "dedicated", "value": "cpu"}]}}));
        assert!(filter(&wrong_value, &n).is_err());
        let all = pod(json!({"metadata": {"name": "d"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"operator": "Exists"}]}}));
        assert!(filter(&all, &n).is_ok());
        let soft = tainted("s", json!([{"key": "k", "effect": "PreferNoSchedule"}]));
        assert!(filter(&p, &soft).is_ok());
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let a = tainted("a", json!([]));
        let b = tainted("b", json!([{"key": "k", "effect": "PreferNoSchedule"}]));
        let c = tainted(
            "c",
            json!([{"key": "k", "effect": "PreferNoSchedule"}, {"key": "j", "effect": "PreferNoSchedule"}]),
        );
        let p = pod(json!({"metadata": {"name": "a"}}));
        assert_eq!(score(&p, &[&a, &b, &c]), vec![100, 50, 0]);
        let tol = pod(json!({"metadata": {"name": "t"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "PreferNoSchedule"}]}}));
        assert_eq!(score(&tol, &[&a, &b, &c]), vec![100, 100, 0]);
    }
}
