//! Pods: status reset to Pending on create, graceful deletion for pods bound to a node, field selectors.

use serde_json::{Value, json};

use super::Strategy;

/// The pod strategy.
pub(super) struct Pod;

/// The one instance.
pub(super) static POD: Pod = Pod;

impl Strategy for Pod {
    fn reset_status_on_create(&self, obj: &mut Value) {
        obj["status"] = json!({ "phase": "Pending", "qosClass": qos_class(obj) });
    }
    fn extra_fields(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }
    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> i64 {
        // Upstream deletes at once pods that never reached a node or already finished.
        let bound = obj.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        requested
            .or_else(|| obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
            .unwrap_or(30)
            .max(0)
    }
    fn deletion_blocked(&self, obj: &Value) -> bool {
        // The kubelet finishes a graceful delete by deleting with grace 0.
        obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).is_some_and(|g| g > 0)
    }
    fn return_deleted_object(&self) -> bool {
        true
    }
}

/// Guaranteed, Burstable or BestEffort, from the containers' requests and limits.
fn qos_class(obj: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| obj.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let has = |m: Option<&serde_json::Map<String, Value>>, r: &str| m.is_some_and(|m| m.contains_key(r));
        if has(req, "cpu") || has(req, "memory") || has(lim, "cpu") || has(lim, "memory") {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(r));
            let q = req.and_then(|m| m.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed && !containers.is_empty() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
