//! What the scheduler writes to the API: bindings, the pod's `PodScheduled` condition and
//! `nominatedNodeName` (only when they change), events, and preemption's victim deletions.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_client::events::{EventType, Recorder};
use serde_json::json;

use crate::podinfo::PodInfo;
use crate::state::SCHEDULER_NAME;

/// Binds `pod` to `node` through the `pods/binding` subresource.
pub(crate) async fn bind(client: &Client, pod: &PodInfo, node: &str) -> Result<(), kube::Error> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    api.create_subresource::<_, serde_json::Value>("binding", &pod.name, &PostParams::default(), &binding).await?;
    Ok(())
}

/// Whether the pod already carries this PodScheduled=False condition and nomination.
pub(crate) fn condition_unchanged(pod: &Pod, message: &str, nominated: Option<&str>) -> bool {
    let status = pod.status.as_ref();
    let same_condition = status.and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
        cs.iter().any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        })
    });
    let current = status.and_then(|s| s.nominated_node_name.as_deref()).unwrap_or("");
    same_condition && nominated.is_none_or(|n| n == current)
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Records why the pod fits nowhere: the condition (when it changed) and a FailedScheduling event.
/// `nominated`: `Some(node)` sets `nominatedNodeName` (empty clears it).
pub(crate) async fn record_failure(
    client: &Client,
    recorder: &Recorder,
    pod: &PodInfo,
    message: &str,
    nominated: Option<&str>,
) {
    if !condition_unchanged(&pod.pod, message, nominated) {
        let was_false = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False"));
        let mut condition = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null});
        if !was_false {
            condition["lastTransitionTime"] = json!(now());
        }
        let mut status = json!({"conditions": [condition]});
        if let Some(n) = nominated {
            status["nominatedNodeName"] = if n.is_empty() { serde_json::Value::Null } else { json!(n) };
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        let patch = json!({"status": status});
        if let Err(e) = api.patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            tracing::debug!(pod = %pod.key(), error = %e, "writing the PodScheduled condition");
        }
    }
    recorder.record(pod.pod.as_ref(), EventType::Warning, "FailedScheduling", message).await;
}

/// Evicts one preemption victim: the DisruptionTarget condition, the deletion, a Preempted event.
pub(crate) async fn preempt_victim(
    client: &Client,
    recorder: &Recorder,
    victim: Arc<PodInfo>,
    preemptor_uid: &str,
    node: &str,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
    let patch = json!({"status": {"conditions": [{
        "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
        "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": now(),
    }]}});
    if let Err(e) = api.patch_status(&victim.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        tracing::debug!(pod = %victim.key(), error = %e, "setting the DisruptionTarget condition");
    }
    match api.delete(&victim.name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(e) if rkube_client::api::is_not_found(&e) => return,
        Err(e) => {
            tracing::warn!(pod = %victim.key(), error = %e, "deleting a preemption victim");
            return;
        }
    }
    recorder
        .record(
            victim.pod.as_ref(),
            EventType::Normal,
            "Preempted",
            &format!("Preempted by pod {preemptor_uid} on node {node}"),
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_condition_is_not_written_again() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m"}]}}))
        .unwrap();
        assert!(condition_unchanged(&pod, "m", None));
        assert!(!condition_unchanged(&pod, "other", None));
        assert!(!condition_unchanged(&pod, "m", Some("n1")));
        assert!(condition_unchanged(&pod, "m", Some("")));
    }
}
