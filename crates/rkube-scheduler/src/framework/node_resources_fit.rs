//! NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage, extended resources) must fit in
//! what the node's bound and assumed pods leave of its allocatable, within its pod count; and its default
//! LeastAllocated score (cpu and memory, weight 1 each).

use super::{MAX_NODE_SCORE, Status};
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

pub(crate) const NAME: &str = "NodeResourcesFit";

/// The reasons the pod does not fit (empty when it does), in upstream's order.
pub(crate) fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut out = Vec::new();
    if node.pods.len() as i64 + 1 > node.allowed_pods {
        out.push("Too many pods".to_owned());
    }
    let req = &pod.requests;
    if req.is_zero() {
        return out;
    }
    let (alloc, used) = (&node.allocatable, &node.requested);
    if alloc.milli_cpu < req.milli_cpu + used.milli_cpu {
        out.push("Insufficient cpu".to_owned());
    }
    if alloc.memory < req.memory + used.memory {
        out.push("Insufficient memory".to_owned());
    }
    if alloc.ephemeral_storage < req.ephemeral_storage + used.ephemeral_storage {
        out.push("Insufficient ephemeral-storage".to_owned());
    }
    for (name, want) in &req.scalar {
        if *want > 0 && alloc.get(name) < want + used.get(name) {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let reasons = insufficient(pod, node);
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Status { code: super::Code::Unschedulable, reasons, plugin: NAME })
}

fn least(requested: i64, allocatable: i64) -> i64 {
    if allocatable == 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_NODE_SCORE / allocatable
}

/// LeastAllocated: the more of cpu and memory left free after placing the pod, the better.
pub(crate) fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = least(node.non_zero_requested.0 + pod.non_zero.0, node.allocatable.milli_cpu);
    let mem = least(node.non_zero_requested.1 + pod.non_zero.1, node.allocatable.memory);
    (cpu + mem) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    fn requesting(name: &str, req: serde_json::Value) -> std::sync::Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}}),
        )
    }

    #[test]
    fn requests_must_fit_next_to_bound_pods() {
        let mut n = node("n", json!({"cpu": "2", "memory": "4Gi", "pods": "2", "example.com/gpu": "1"}), json!({}));
        n.add_pod(requesting("a", json!({"cpu": "1500m", "memory": "1Gi"})));
        assert!(filter(&requesting("b", json!({"cpu": "500m"})), &n).is_ok());
        assert_eq!(
            filter(&requesting("c", json!({"cpu": "600m", "memory": "4Gi", "example.com/gpu": "2"})), &n)
                .unwrap_err()
                .reasons,
            vec!["Insufficient cpu", "Insufficient memory", "Insufficient example.com/gpu"]
        );
        n.add_pod(requesting("d", json!({})));
        assert_eq!(filter(&requesting("e", json!({})), &n).unwrap_err().reasons, vec!["Too many pods"]);
        let no_storage = node("s", json!({"cpu": "2", "pods": "10"}), json!({}));
        assert_eq!(
            filter(&requesting("f", json!({"ephemeral-storage": "1Gi"})), &no_storage).unwrap_err().reasons,
            vec!["Insufficient ephemeral-storage"]
        );
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let mut busy = node("busy", json!({"cpu": "4", "memory": "4Gi", "pods": "10"}), json!({}));
        busy.add_pod(requesting("a", json!({"cpu": "2", "memory": "2Gi"})));
        let idle = node("idle", json!({"cpu": "4", "memory": "4Gi", "pods": "10"}), json!({}));
        let p = requesting("p", json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(least_allocated(&p, &idle), 75);
        assert_eq!(least_allocated(&p, &busy), 25);
    }
}
