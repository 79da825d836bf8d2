//! Server-side apply scenarios: create by apply, pruning, conflicts, force, list merging, error cases.

use serde_json::json;

use super::*;
use crate::{ApplyError, Operation, apply, update};

const APPLIED_NGINX: &str = r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;

#[test]
fn create_by_apply_records_the_apply_manager() {
    let schema = deploy_schema();
    let obj = apply(None, &deployment(3, "nginx:1.25"), false, &req("kubectl", T0), &schema).expect("applies");
    assert_eq!(obj["spec"]["replicas"], 3);
    assert_eq!(
        obj["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": serde_json::from_str::<serde_json::Value>(APPLIED_NGINX).expect("json")
        }])
    );
    assert_eq!(owned(&obj, "kubectl"), APPLIED_NGINX);
}

#[test]
fn configmap_apply_matches_the_documented_example() {
    // kubernetes.io/docs/reference/using-api/server-side-apply: the managedFields of an applied ConfigMap.
    let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}}, "data": {"key": "some value"}});
    let obj = apply(None, &cm, false, &Request::new("kubectl", "v1", "ConfigMap", T0), &schema).expect("applies");
    assert_eq!(owned(&obj, "kubectl"), r#"{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:test-label":{}}}}"#);
}

#[test]
fn reapplying_without_a_field_deletes_it() {
    let schema = deploy_schema();
    let mut first = deployment(3, "nginx:1.25");
    first["metadata"]["labels"]["tier"] = json!("web");
    first["spec"]["minReadySeconds"] = json!(5);
    let live = stored(apply(None, &first, false, &req("kubectl", T0), &schema).expect("applies"));
    let obj = apply(Some(&live), &deployment(3, "nginx:1.25"), false, &req("kubectl", T1), &schema).expect("applies");
    assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
    assert!(obj["spec"].get("minReadySeconds").is_none());
    assert_eq!(owned(&obj, "kubectl"), APPLIED_NGINX);
    assert_eq!(entry(&obj, "kubectl").and_then(|e| e.time).as_deref(), Some(T1));
}

#[test]
fn a_dropped_field_another_manager_owns_stays() {
    let schema = deploy_schema();
    let mut first = deployment(3, "nginx:1.25");
    first["metadata"]["labels"]["tier"] = json!("web");
    let live = stored(apply(None, &first, false, &req("kubectl", T0), &schema).expect("applies"));
    // Another applier sets the same label to the same value: both own it, no conflict.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "labels": {"tier": "web"}}});
    let live = apply(Some(&live), &other, false, &req("labeler", T1), &schema).expect("shared ownership");
    assert_eq!(owned(&live, "labeler"), r#"{"f:metadata":{"f:labels":{"f:tier":{}}}}"#);
    let obj = apply(Some(&live), &deployment(3, "nginx:1.25"), false, &req("kubectl", T2), &schema).expect("applies");
    assert_eq!(obj["metadata"]["labels"]["tier"], "web");
    assert_eq!(owned(&obj, "kubectl"), APPLIED_NGINX);
}

#[test]
fn applying_another_value_of_an_applied_field_conflicts() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    let bob =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 5}});
    let err = apply(Some(&live), &bob, false, &req("bob", T1), &schema).expect_err("conflicts");
    let ApplyError::Conflict(conflicts) = &err else { panic!("expected a conflict, got {err:?}") };
    assert_eq!(conflicts.message(), "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas");
    let status = err.to_api_error().to_status();
    assert_eq!(status["code"], 409);
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".spec.replicas"}])
    );
}

#[test]
fn conflicts_with_an_updater_name_its_version() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("kubectl", T0), &schema).expect("applies"));
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(4);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    let live = update(Some(&live), &scaled, &req("kubectl-client-side-apply", T1), &schema);
    let err = apply(Some(&live), &deployment(6, "nginx:1.27"), false, &req("ci", T2), &schema).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn force_takes_ownership() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    let bob =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 5}});
    let obj = apply(Some(&live), &bob, true, &req("bob", T1), &schema).expect("forced");
    assert_eq!(obj["spec"]["replicas"], 5);
    assert_eq!(owned(&obj, "bob"), r#"{"f:spec":{"f:replicas":{}}}"#);
    assert!(!entry(&obj, "alice").expect("alice stays").fields().has(&crate::field_path(&["spec", "replicas"])));
    // Alice re-applying her old value now conflicts with bob.
    let err =
        apply(Some(&obj), &deployment(3, "nginx:1.25"), false, &req("alice", T2), &schema).expect_err("conflicts");
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"bob\": .spec.replicas");
}

#[test]
fn containers_merge_per_item_and_atomic_lists_are_replaced() {
    let schema = deploy_schema();
    let mut with_args = deployment(1, "nginx:1.25");
    with_args["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-a", "-b"]);
    let live = stored(apply(None, &with_args, false, &req("alice", T0), &schema).expect("applies"));
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "log", "image": "busybox"}]}}}});
    let live = apply(Some(&live), &sidecar, false, &req("injector", T1), &schema).expect("no conflict: another item");
    let names: Vec<&str> = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nginx", "log"]);
    assert_eq!(
        owned(&live, "injector"),
        r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"log\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
    );
    // Alice changes her container's args: the atomic list is replaced whole, the sidecar is untouched.
    let mut new_args = deployment(1, "nginx:1.25");
    new_args["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-c"]);
    let obj = apply(Some(&live), &new_args, false, &req("alice", T2), &schema).expect("applies");
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["args"], json!(["-c"]));
    assert_eq!(containers[1], json!({"name": "log", "image": "busybox"}));
    assert!(entry(&obj, "alice").expect("alice").fields().has(&[
        PathElementExt::f("spec"),
        PathElementExt::f("template"),
        PathElementExt::f("spec"),
        PathElementExt::f("containers"),
        crate::PathElement::key([("name", json!("nginx"))]),
        PathElementExt::f("args"),
    ]));
}

/// Shorthand for field elements in these tests.
struct PathElementExt;

impl PathElementExt {
    fn f(name: &str) -> crate::PathElement {
        crate::PathElement::field(name)
    }
}

#[test]
fn before_first_apply_owns_fields_of_untracked_objects() {
    let schema = deploy_schema();
    // An object stored without managedFields (created before tracking, or cleared by a client).
    let live = stored(deployment(3, "nginx:1.25"));
    let err =
        apply(Some(&live), &deployment(5, "nginx:1.25"), false, &req("kubectl", T0), &schema).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
    let obj =
        apply(Some(&live), &deployment(3, "nginx:1.25"), false, &req("kubectl", T0), &schema).expect("same values");
    assert_eq!(
        managers(&obj),
        [("kubectl".to_owned(), Operation::Apply), ("before-first-apply".to_owned(), Operation::Update)]
    );
}

#[test]
fn a_no_op_apply_keeps_the_object_and_time() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("kubectl", T0), &schema).expect("applies"));
    let again = apply(Some(&live), &deployment(3, "nginx:1.25"), false, &req("kubectl", T1), &schema).expect("applies");
    assert_eq!(again, live);
}

#[test]
fn kubectl_takes_over_from_client_side_apply() {
    let schema = deploy_schema();
    let config = deployment(3, "nginx:1.25");
    let mut created = config.clone();
    created["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": crate::gojson::to_string(&config) + "\n"});
    let live = stored(update(None, &created, &req("kubectl-client-side-apply", T0), &schema));
    // The server-side apply changes fields the last-applied configuration still describes: no conflict.
    let obj =
        apply(Some(&live), &deployment(4, "nginx:1.25"), false, &req("kubectl", T1), &schema).expect("takes over");
    assert_eq!(obj["spec"]["replicas"], 4);
    let annotation = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("kept in sync");
    assert_eq!(annotation, crate::gojson::to_string(&deployment(4, "nginx:1.25")) + "\n");
    assert!(!owned(&obj, "kubectl-client-side-apply").contains("f:replicas"));
    // Another manager gets no such pass.
    let err =
        apply(Some(&live), &deployment(4, "nginx:1.25"), false, &req("helm", T1), &schema).expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn bad_applied_objects() {
    let schema = deploy_schema();
    let mut rs = deployment(1, "x");
    rs["kind"] = json!("ReplicaSet");
    assert_eq!(
        apply(None, &rs, false, &req("k", T0), &schema),
        Err(ApplyError::BadRequest("invalid object type: apps/v1, Kind=ReplicaSet".into()))
    );
    let mut with_mf = deployment(1, "x");
    with_mf["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply(None, &with_mf, false, &req("k", T0), &schema),
        Err(ApplyError::BadRequest("metadata.managedFields must be nil".into()))
    );
    let mut dup = deployment(1, "x");
    dup["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]);
    let err = apply(None, &dup, false, &req("k", T0), &schema).expect_err("duplicates");
    assert_eq!(
        err.to_string(),
        r#"failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="nginx"].env: duplicate entries for key [name="A"]"#
    );
    assert_eq!(err.to_api_error().code, 500);
}

#[test]
fn reset_fields_are_not_owned() {
    let schema = deploy_schema();
    let reset = crate::reset_fields_for("", true);
    let mut with_status = deployment(1, "x");
    with_status["status"] = json!({"replicas": 1});
    let obj = apply(None, &with_status, false, &req("k", T0).with_reset_fields(&reset), &schema).expect("applies");
    assert!(!owned(&obj, "k").contains("f:status"));
}
