//! List and map kinds in practice: sets, atomic items, keys with defaults, schemaless objects, many writers.

use serde_json::json;

use super::*;
use crate::{DeducedSchema, apply, update};

fn cm(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

fn cm_req(manager: &str) -> Request<'_> {
    Request::new(manager, "v1", "ConfigMap", T0)
}

#[test]
fn finalizers_are_a_set_each_applier_owns_its_own() {
    let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
    let a = cm(json!({"metadata": {"name": "c", "finalizers": ["a.example/x"]}}));
    let live = stored(apply(None, &a, false, &cm_req("a"), &schema).expect("applies"));
    let b = cm(json!({"metadata": {"name": "c", "finalizers": ["b.example/y"]}}));
    let obj = apply(Some(&live), &b, false, &cm_req("b"), &schema).expect("no conflict");
    assert_eq!(obj["metadata"]["finalizers"], json!(["a.example/x", "b.example/y"]));
    assert_eq!(owned(&obj, "b"), r#"{"f:metadata":{"f:finalizers":{"v:\"b.example/y\"":{}}}}"#);
    // a drops its finalizer: it goes, b's stays.
    let obj = apply(
        Some(&stored(obj)),
        &cm(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})),
        false,
        &cm_req("a"),
        &schema,
    )
    .expect("applies");
    assert_eq!(obj["metadata"]["finalizers"], json!(["b.example/y"]));
}

#[test]
fn owner_references_are_atomic_items_keyed_by_uid() {
    let schema = BuiltinSchema::for_kind("apps/v1", "ReplicaSet");
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}
    ]}, "spec": {"selector": {"matchLabels": {"a": "b"}}}});
    let obj = update(None, &rs, &Request::new("kube-controller-manager", "apps/v1", "ReplicaSet", T0), &schema);
    assert_eq!(
        owned(&obj, "kube-controller-manager"),
        r#"{"f:metadata":{"f:ownerReferences":{".":{},"k:{\"uid\":\"u-1\"}":{}}},"f:spec":{"f:selector":{}}}"#
    );
}

#[test]
fn service_ports_key_on_port_and_defaulted_protocol() {
    let schema = BuiltinSchema::for_kind("v1", "Service");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}});
    let obj = apply(None, &svc, false, &Request::new("kubectl", "v1", "Service", T0), &schema).expect("applies");
    assert_eq!(
        owned(&obj, "kubectl"),
        r#"{"f:spec":{"f:ports":{"k:{\"port\":53,\"protocol\":\"UDP\"}":{".":{},"f:port":{},"f:protocol":{}},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:targetPort":{}}},"f:selector":{}}}"#
    );
}

#[test]
fn schemaless_objects_own_every_map_key() {
    let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3, "tags": ["a"]}});
    let obj =
        apply(None, &cr, false, &Request::new("m", "example.com/v1", "Widget", T0), &DeducedSchema).expect("applies");
    assert_eq!(owned(&obj, "m"), r#"{"f:spec":{".":{},"f:size":{},"f:tags":{}}}"#);
    // The built-in schema on an unknown kind treats objects as structs instead.
    let schema = BuiltinSchema::for_kind("example.com/v1", "Widget");
    let obj = apply(None, &cr, false, &Request::new("m", "example.com/v1", "Widget", T0), &schema).expect("applies");
    assert_eq!(owned(&obj, "m"), r#"{"f:spec":{"f:size":{},"f:tags":{}}}"#);
}

#[test]
fn repeated_updates_by_one_manager_accumulate() {
    let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
    let live = stored(update(None, &cm(json!({"data": {"a": "1"}})), &cm_req("editor"), &schema));
    let next = update(
        Some(&live),
        &cm(json!({"data": {"a": "1", "b": "2"}})),
        &Request::new("editor", "v1", "ConfigMap", T1),
        &schema,
    );
    assert_eq!(owned(&next, "editor"), r#"{"f:data":{".":{},"f:a":{},"f:b":{}}}"#);
    assert_eq!(entry(&next, "editor").and_then(|e| e.time).as_deref(), Some(T1));
}

#[test]
fn more_than_ten_updaters_fold_into_ancient_changes() {
    let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
    let mut live = stored(update(None, &cm(json!({"data": {"k0": "v"}})), &cm_req("w0"), &schema));
    let times: Vec<String> = (1..=10).map(|i| format!("2024-05-01T10:01:{i:02}Z")).collect();
    for (i, t) in (1..=10).zip(&times) {
        let mut next = live.clone();
        next["data"][format!("k{i}")] = json!("v");
        let name = format!("w{i}");
        live = update(Some(&live), &next, &Request::new(&name, "v1", "ConfigMap", t), &schema);
    }
    let names: Vec<String> = managers(&live).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names.len(), 10);
    assert_eq!(names[0], "ancient-changes");
    assert_eq!(owned(&live, "ancient-changes"), r#"{"f:data":{".":{},"f:k0":{},"f:k1":{}}}"#);
}

#[test]
fn status_apply_owns_only_status() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(1, "x"), false, &req("kubectl", T0), &schema).expect("applies"));
    let reset = crate::reset_fields_for("status", true);
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 9}, "status": {"replicas": 1}});
    let r = req("controller", T1).with_subresource("status").with_reset_fields(&reset);
    let obj = apply(Some(&live), &status, false, &r, &schema).expect("spec is ignored, so no conflict");
    let e = entry(&obj, "controller").expect("entry");
    assert_eq!(
        (e.subresource.as_str(), e.fields().to_fields_v1_string().as_str()),
        ("status", r#"{"f:status":{"f:replicas":{}}}"#)
    );
}
