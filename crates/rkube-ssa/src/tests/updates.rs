//! Update scenarios: ownership moving to the writer, untracked objects, client-supplied managedFields.

use serde_json::json;

use super::*;
use crate::{Operation, apply, update};

#[test]
fn an_update_takes_the_fields_it_changes() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(7);
    let obj = update(Some(&live), &scaled, &req("hpa", T1), &schema);
    assert_eq!(owned(&obj, "hpa"), r#"{"f:spec":{"f:replicas":{}}}"#);
    let hpa = entry(&obj, "hpa").expect("entry");
    assert_eq!(
        (hpa.operation, hpa.api_version.as_str(), hpa.time.as_deref()),
        (Operation::Update, "apps/v1", Some(T1))
    );
    assert!(!owned(&obj, "alice").contains("f:replicas"));
    assert!(owned(&obj, "alice").contains("f:image"));
    assert_eq!(managers(&obj), [("alice".to_owned(), Operation::Apply), ("hpa".to_owned(), Operation::Update)]);
}

#[test]
fn removing_fields_takes_them_from_owners_without_new_entry() {
    let schema = deploy_schema();
    let mut first = deployment(3, "nginx:1.25");
    first["metadata"]["labels"]["tier"] = json!("web");
    let live = stored(apply(None, &first, false, &req("alice", T0), &schema).expect("applies"));
    let mut edited = live.clone();
    edited["metadata"]["labels"].as_object_mut().expect("labels").remove("tier");
    let obj = update(Some(&live), &edited, &req("editor", T1), &schema);
    assert!(entry(&obj, "editor").is_none());
    assert!(!owned(&obj, "alice").contains("f:tier"));
}

#[test]
fn untracked_objects_stay_untracked_on_update() {
    let schema = deploy_schema();
    let live = stored(deployment(3, "nginx:1.25"));
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(4);
    let obj = update(Some(&live), &scaled, &req("kubectl-edit", T0), &schema);
    assert!(obj["metadata"].get("managedFields").is_none());
    assert_eq!(obj["spec"]["replicas"], 4);
}

#[test]
fn client_managed_fields_replace_reset_or_fall_back() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    // [{}] clears them; the object is then untracked, so the update records nothing either.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    assert!(update(Some(&live), &reset, &req("x", T1), &schema)["metadata"].get("managedFields").is_none());
    // Invalid ones are ignored: the live ones stay.
    let mut invalid = live.clone();
    invalid["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Patch", "apiVersion": "v1"}]);
    let kept = update(Some(&live), &invalid, &req("x", T1), &schema);
    assert_eq!(kept["metadata"]["managedFields"], live["metadata"]["managedFields"]);
    // Valid ones replace them (a client editing ownership directly).
    let mut edited = live.clone();
    edited["metadata"]["managedFields"] = json!([{"manager": "bob", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    let replaced = update(Some(&live), &edited, &req("x", T1), &schema);
    assert_eq!(managers(&replaced), [("bob".to_owned(), Operation::Apply)]);
}

#[test]
fn status_updates_record_the_subresource_and_ignore_client_managed_fields() {
    let schema = deploy_schema();
    let live = stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    let mut with_status = live.clone();
    with_status["status"] = json!({"replicas": 3, "observedGeneration": 1});
    with_status["metadata"]["managedFields"] = json!([]);
    let reset = crate::reset_fields_for("status", true);
    let obj = update(
        Some(&live),
        &with_status,
        &req("kube-controller-manager", T1).with_subresource("status").with_reset_fields(&reset),
        &schema,
    );
    let kcm = entry(&obj, "kube-controller-manager").expect("entry");
    assert_eq!(kcm.subresource, "status");
    assert_eq!(kcm.fields().to_fields_v1_string(), r#"{"f:status":{"f:observedGeneration":{},"f:replicas":{}}}"#);
    assert!(entry(&obj, "alice").is_some());
    let list = obj["metadata"]["managedFields"].as_array().expect("list");
    assert_eq!(list[1]["subresource"], "status");
}

#[test]
fn nameless_writers_are_unknown() {
    let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let obj = update(None, &cm, &Request::new("", "v1", "ConfigMap", T0), &schema);
    assert_eq!(owned(&obj, "unknown"), r#"{"f:data":{".":{},"f:a":{}}}"#);
}

#[test]
fn update_fieldsets_round_trip_through_the_object() {
    let schema = deploy_schema();
    let obj = update(None, &deployment(1, "x"), &req("kubectl-create", T0), &schema);
    let list = obj["metadata"]["managedFields"].clone();
    for e in crate::managed_fields(&obj).expect("decodes") {
        let text = e.fields().to_fields_v1_string();
        assert_eq!(&fields(&text), e.fields());
    }
    assert_eq!(list[0]["fieldsType"], "FieldsV1");
}

/// An entry a write leaves alone is written back as stored (not decoded and encoded again); one whose fields
/// change is encoded anew. An element prefix this code does not know (dropped by decoding, as upstream does)
/// shows which happened.
#[test]
fn unchanged_entries_keep_their_stored_encoding() {
    let schema = deploy_schema();
    let applied =
        stored(apply(None, &deployment(3, "nginx:1.25"), false, &req("alice", T0), &schema).expect("applies"));
    let mut labelled = applied.clone();
    labelled["metadata"]["labels"]["tier"] = json!("web");
    let mut live = update(Some(&applied), &labelled, &req("labeler", T1), &schema);
    for e in live["metadata"]["managedFields"].as_array_mut().expect("entries") {
        e["fieldsV1"]["z:future"] = json!({});
    }
    let raw = |obj: &Value, manager: &str| {
        let entries = obj["metadata"]["managedFields"].as_array().expect("entries").clone();
        entries.into_iter().find(|e| e["manager"] == manager).map(|e| e["fieldsV1"].clone()).expect("entry")
    };
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["metadata"].as_object_mut().expect("metadata").remove("managedFields");
    let obj = update(Some(&live), &scaled, &req("hpa", T2), &schema);
    // The labeler's fields did not change: its entry is the stored one, unknown element included.
    assert_eq!(raw(&obj, "labeler"), raw(&live, "labeler"));
    assert!(raw(&obj, "labeler").get("z:future").is_some());
    // Alice lost spec.replicas: her entry is encoded from the decoded set, without what decoding dropped.
    assert!(raw(&obj, "alice").get("z:future").is_none());
    assert!(!owned(&obj, "alice").contains("f:replicas"));
    assert_eq!(owned(&obj, "hpa"), r#"{"f:spec":{"f:replicas":{}}}"#);
    // A client sending back exactly the stored list is the same as sending none.
    let mut echoed = live.clone();
    echoed["spec"]["replicas"] = json!(5);
    assert_eq!(update(Some(&live), &echoed, &req("hpa", T2), &schema), obj);
    // A client's own list is decoded and encoded anew, as upstream does.
    let mut own_list = scaled.clone();
    own_list["metadata"]["managedFields"] = live["metadata"]["managedFields"].clone();
    own_list["metadata"]["managedFields"][0]["manager"] = json!("someone");
    let theirs = update(Some(&live), &own_list, &req("hpa", T2), &schema);
    assert!(
        theirs["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["fieldsV1"].get("z:future").is_none())
    );
}
