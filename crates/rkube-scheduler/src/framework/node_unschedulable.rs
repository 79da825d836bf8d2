//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods tolerating
//! `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::Taint;

use super::Status;
use super::taint_toleration::tolerated;
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const NAME: &str = "NodeUnschedulable";
const REASON: &str = "node(s) were unschedulable";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint =
        Taint { key: "node.kubernetes.io/unschedulable".into(), effect: "NoSchedule".into(), ..Taint::default() };
    let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
    if tolerated(&taint, tolerations) { Ok(()) } else { Err(Status::unresolvable(NAME, REASON)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    #[test]
    fn cordoned_nodes_reject_pods_unless_tolerated() {
        let cordoned = node("n", json!({}), json!({"spec": {"unschedulable": true}}));
        let plain = pod(json!({"metadata": {"name": "a"}}));
        assert_eq!(filter(&plain, &cordoned).unwrap_err().reasons, vec![REASON]);
        assert!(filter(&plain, &node("m", json!({}), json!({}))).is_ok());
        let tolerant = pod(json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert!(filter(&tolerant, &cordoned).is_ok());
    }
}
