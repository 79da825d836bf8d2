//! The built-in kinds' empty objects as upstream's typed zero values serialize: non-pointer structs present
//! as `{}`, slices and pointers without `omitempty` as `null`. Computed from k8s.io/api's struct tags.
//!
//! Why it matters: on a create, upstream diffs the new object against this zero value, so a map that exists
//! in the zero value (`spec.template`) is not "added" and gets no `.` entry in FieldsV1, while one that does
//! not (`metadata.labels`, `spec.strategy.rollingUpdate`) does.

use serde_json::{Value, json};

/// The pod template's zero value, shared by the workload kinds.
fn template() -> Value {
    json!({"metadata": {}, "spec": {"containers": null}})
}

/// The zero value of a built-in kind (`known`); `{}` for other kinds (custom resources are unstructured
/// upstream, so their empty object has no fields).
pub(crate) fn empty_object(group: &str, kind: &str, known: bool) -> Value {
    if !known {
        return json!({});
    }
    match (group, kind) {
        ("", "Pod") => json!({"metadata": {}, "spec": {"containers": null}, "status": {}}),
        ("", "PodTemplate") => json!({"metadata": {}, "template": template()}),
        ("", "ReplicationController" | "Namespace" | "PersistentVolume" | "ResourceQuota") => {
            json!({"metadata": {}, "spec": {}, "status": {}})
        }
        ("", "Service") => json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}}),
        ("", "PersistentVolumeClaim") => json!({"metadata": {}, "spec": {"resources": {}}, "status": {}}),
        ("", "Node") => {
            json!({"metadata": {}, "spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {}}, "nodeInfo": {}}})
        }
        ("", "LimitRange") => json!({"metadata": {}, "spec": {"limits": null}}),
        ("", "Binding") => json!({"metadata": {}, "target": {}}),
        ("", "Event") => {
            json!({"metadata": {}, "involvedObject": {}, "source": {}, "firstTimestamp": null, "lastTimestamp": null, "eventTime": null})
        }
        ("apps", "Deployment") => {
            json!({"metadata": {}, "spec": {"selector": null, "template": template(), "strategy": {}}, "status": {}})
        }
        ("apps", "ReplicaSet") => {
            json!({"metadata": {}, "spec": {"selector": null, "template": template()}, "status": {}})
        }
        ("apps", "DaemonSet" | "StatefulSet") => {
            json!({"metadata": {}, "spec": {"selector": null, "template": template(), "updateStrategy": {}}, "status": {}})
        }
        ("apps", "ControllerRevision") => json!({"metadata": {}, "data": null}),
        ("batch", "Job") => json!({"metadata": {}, "spec": {"template": template()}, "status": {}}),
        ("batch", "CronJob") => {
            json!({"metadata": {}, "spec": {"jobTemplate": {"metadata": {}, "spec": {"template": template()}}}, "status": {}})
        }
        ("networking.k8s.io", "Ingress") => json!({"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}}),
        ("networking.k8s.io", "NetworkPolicy") => json!({"metadata": {}, "spec": {"podSelector": {}}}),
        ("networking.k8s.io", "IngressClass") | ("coordination.k8s.io", "Lease") | ("storage.k8s.io", "CSIDriver") => {
            json!({"metadata": {}, "spec": {}})
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => json!({"metadata": {}, "rules": null}),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => json!({"metadata": {}, "roleRef": {}}),
        ("policy", "PodDisruptionBudget")
        | ("autoscaling", "Scale")
        | ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            json!({"metadata": {}, "spec": {}, "status": {}})
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            json!({"metadata": {}, "spec": {"scaleTargetRef": {}}, "status": {"currentMetrics": null}})
        }
        ("storage.k8s.io", "CSINode") => json!({"metadata": {}, "spec": {"drivers": null}}),
        ("storage.k8s.io", "VolumeAttachment") => json!({"metadata": {}, "spec": {"source": {}}, "status": {}}),
        ("discovery.k8s.io", "EndpointSlice") => json!({"metadata": {}, "endpoints": null, "ports": null}),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            json!({"metadata": {}, "spec": {"request": null}, "status": {}})
        }
        ("events.k8s.io", "Event") => json!({"metadata": {}, "eventTime": null, "regarding": {}}),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            json!({"metadata": {}, "spec": {"priorityLevelConfiguration": {}}, "status": {}})
        }
        _ => json!({"metadata": {}}),
    }
}
