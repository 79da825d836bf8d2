//! A realistic Deployment's life as upstream records it: `kubectl create deployment nginx --image=nginx`
//! (an Update by `kubectl-create` of the defaulted object), then kube-controller-manager's status update.
//! The expected managedFields are written by hand from upstream's documented output.

use serde_json::{Value, json};

use super::*;
use crate::update;

/// What `kubectl create deployment nginx --image=nginx` stores after upstream's defaulting.
fn created() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
            "uid": "6f3c5a83-1c2d-4d3b-9a57-2f5a1b8c9d10", "generation": 1, "creationTimestamp": T0
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

const KUBECTL_CREATE: &str = concat!(
    r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"#,
    r#""f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"#,
    r#""f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"#,
    r#""f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"#,
    r#""f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"#,
    r#""f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#
);

const CONTROLLER_STATUS: &str = concat!(
    r#"{"f:status":{"f:availableReplicas":{},"f:conditions":{".":{},"#,
    r#""k:{\"type\":\"Available\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"#,
    r#""k:{\"type\":\"Progressing\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}},"#,
    r#""f:observedGeneration":{},"f:readyReplicas":{},"f:replicas":{},"f:updatedReplicas":{}}}"#
);

fn condition(kind: &str, reason: &str) -> Value {
    json!({"type": kind, "status": "True", "lastUpdateTime": T1, "lastTransitionTime": T1, "reason": reason, "message": "m"})
}

#[test]
fn kubectl_create_then_controller_status_match_upstream() {
    let schema = deploy_schema();
    let obj = update(None, &created(), &req("kubectl-create", T0), &schema);
    assert_eq!(owned(&obj, "kubectl-create"), KUBECTL_CREATE);

    let mut with_status = obj.clone();
    with_status["status"] = json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [condition("Available", "MinimumReplicasAvailable"), condition("Progressing", "NewReplicaSetAvailable")]
    });
    let reset = crate::reset_fields_for("status", true);
    let status_req = req("kube-controller-manager", T1).with_subresource("status").with_reset_fields(&reset);
    let obj = update(Some(&obj), &with_status, &status_req, &schema);

    let expected = json!([
        {"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": serde_json::from_str::<Value>(KUBECTL_CREATE).expect("json")},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": serde_json::from_str::<Value>(CONTROLLER_STATUS).expect("json"), "subresource": "status"}
    ]);
    assert_eq!(obj["metadata"]["managedFields"], expected);
    assert_eq!(owned(&obj, "kube-controller-manager"), CONTROLLER_STATUS);
}

#[test]
fn scaling_through_apply_after_create_conflicts_with_kubectl_create() {
    let schema = deploy_schema();
    let obj = update(None, &created(), &req("kubectl-create", T0), &schema);
    let scale =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 3}});
    let err = crate::apply(Some(&obj), &scale, false, &req("ci", T1), &schema).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
    );
    let forced = crate::apply(Some(&obj), &scale, true, &req("ci", T1), &schema).expect("forced");
    assert_eq!(owned(&forced, "ci"), r#"{"f:spec":{"f:replicas":{}}}"#);
    assert!(!owned(&forced, "kubectl-create").contains("f:replicas"));
}
