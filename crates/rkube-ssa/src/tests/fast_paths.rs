//! The lazily normalized diff and the in-place set operations against the reference implementation (the
//! copying one they replaced): byte-identical managedFields for creates, updates and applies' diffs.

use serde_json::{Value, json};

use super::bench::{cases, created_pod, lease, running};
use super::reference;
use super::*;
use crate::compare::compare_normalized;
use crate::schema::Schema;
use crate::typed::without_managed_fields;
use crate::{DeducedSchema, reset_fields_for, update, update_owned};

/// The new diff of normalized objects equals the reference's diff of normalized copies.
fn same_diff(before: &Value, after: &Value, schema: &dyn Schema) {
    let zero = schema.empty_object();
    let got = compare_normalized(before, after, &zero, schema);
    let want = reference::compare(
        &reference::normalized(&without_managed_fields(before), &zero),
        &reference::normalized(&without_managed_fields(after), &zero),
        schema,
    );
    match (got, want) {
        (Ok(g), Ok(w)) => {
            assert_eq!(g.added, w.added, "added: {before} -> {after}");
            assert_eq!(g.modified, w.modified, "modified: {before} -> {after}");
            assert_eq!(g.removed, w.removed, "removed: {before} -> {after}");
        }
        (Err(g), Err(w)) => assert_eq!(g, w),
        (g, w) => panic!("{before} -> {after}: got {g:?}, want {w:?}"),
    }
}

/// `update` and `update_owned` give exactly the reference's object (managedFields included).
fn same_update(live: Option<&Value>, new: &Value, req: &Request<'_>, schema: &dyn Schema) -> Value {
    let want = reference::update(live, new, req, schema);
    let got = update(live, new, req, schema);
    assert_eq!(got, want, "update: {live:?} -> {new}");
    assert_eq!(serde_json::to_string(&got).ok(), serde_json::to_string(&want).ok());
    assert_eq!(update_owned(live, new.clone(), req, schema), want, "update_owned");
    if let Some(l) = live {
        same_diff(l, new, schema);
    }
    same_diff(&schema.empty_object(), new, schema);
    want
}

#[test]
fn benchmark_writes_match_the_reference() {
    for case in cases() {
        let reset = reset_fields_for(case.subresource, case.has_status);
        let req = Request::new(case.manager, case.api_version, case.kind, T2)
            .with_subresource(case.subresource)
            .with_reset_fields(&reset);
        let out = same_update(case.live.as_ref(), &case.new, &req, &case.schema);
        assert!(out["metadata"]["managedFields"].is_array(), "{}", case.name);
        // The same write without reset fields, and as a create.
        let plain = Request::new(case.manager, case.api_version, case.kind, T2);
        same_update(case.live.as_ref(), &case.new, &plain, &case.schema);
        same_update(None, &case.new, &plain, &case.schema);
    }
}

#[test]
fn pod_lifecycle_matches_the_reference() {
    let schema = BuiltinSchema::for_kind("v1", "Pod");
    let main = reset_fields_for("", true);
    let status = reset_fields_for("status", true);
    let create = Request::new("kubectl-create", "v1", "Pod", T0).with_reset_fields(&main);
    let pod = same_update(None, &created_pod(3), &create, &schema);
    let kubelet = Request::new("kubelet", "v1", "Pod", T1).with_subresource("status").with_reset_fields(&status);
    let run = same_update(Some(&pod), &running(pod.clone()), &kubelet, &schema);
    // A label edit by another manager, then the container image changed and the volume dropped.
    let mut edited = run.clone();
    edited["metadata"]["labels"]["tier"] = json!("web");
    edited["spec"]["containers"][0]["image"] = json!("busybox:1.37");
    edited["spec"]["volumes"] = json!(null);
    let edit = Request::new("kubectl-edit", "v1", "Pod", T2).with_reset_fields(&main);
    let after = same_update(Some(&run), &edited, &edit, &schema);
    // Back to the kubelet: the pod failed, conditions change.
    let mut failed = after.clone();
    failed["status"]["phase"] = json!("Failed");
    failed["status"]["conditions"][2]["status"] = json!("False");
    same_update(Some(&after), &failed, &kubelet, &schema);
}

#[test]
fn lease_renewals_match_the_reference() {
    let schema = BuiltinSchema::for_kind("coordination.k8s.io/v1", "Lease");
    let req = |m: &'static str, t: &'static str| Request::new(m, "coordination.k8s.io/v1", "Lease", t);
    let mut live = same_update(None, &lease("2024-05-01T10:00:00.000000Z"), &req("a", T0), &schema);
    for (i, (m, t)) in [("a", T1), ("a", T2), ("b", T2)].into_iter().enumerate() {
        let mut next = live.clone();
        next["spec"]["renewTime"] = json!(format!("2024-05-01T10:00:0{i}.000000Z"));
        next["spec"]["holderIdentity"] = json!(m);
        live = same_update(Some(&live), &next, &req(m, t), &schema);
    }
}

/// Objects where normalization changes what the diff sees: nulls (in maps, key fields, atomic values and
/// list items), the kind's zero value filling absent structs, managedFields in the object, numbers.
#[test]
fn normalization_corner_cases_match_the_reference() {
    let deploy = deploy_schema();
    let base = stored(deployment(2, "nginx:1.25"));
    let variants = [
        json!({"spec": {"template": null}}),
        json!({"spec": {"template": {"metadata": null, "spec": {"containers": null}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": null, "ports": [{"containerPort": 80, "protocol": null}]}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": null, "image": "x"}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "A", "value": null}, {"name": "A"}]}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "A"}, {"name": "A", "value": "1"}]}]}}}}),
        json!({"spec": {"template": {"spec": {"tolerations": [{"key": "k", "value": null}], "nodeSelector": {"a": null}}}}}),
        json!({"spec": {"selector": {"matchLabels": {"app": "nginx", "x": null}}, "strategy": {"rollingUpdate": null}}}),
        json!({"spec": {"replicas": 2.0, "paused": null, "strategy": {}}}),
        json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}], "labels": null}}),
        json!({"metadata": null}),
        json!({"metadata": {"finalizers": ["a", "b", "a"], "annotations": {}}}),
        json!({"status": null, "spec": {"template": {"metadata": {"labels": {}}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
    ];
    let mut all = vec![base.clone()];
    for v in &variants {
        let mut o = base.clone();
        merge_into(&mut o, v);
        all.push(o);
    }
    let req = |m: &'static str| Request::new(m, "apps/v1", "Deployment", T1);
    for a in &all {
        same_diff(&json!({}), a, &deploy);
        same_diff(&json!({}), a, &DeducedSchema);
        same_update(None, a, &req("create"), &deploy);
        let live = same_update(None, &base, &req("owner"), &deploy);
        same_update(Some(&live), a, &req("writer"), &deploy);
        for b in &all {
            same_diff(a, b, &deploy);
        }
    }
    // A custom resource (empty zero value: nulls are kept) and a kind without a schema.
    let cr = BuiltinSchema::for_kind("example.com/v1", "Widget");
    let w1 = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": null, "b": [1, null]}});
    let w2 = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"b": [1]}});
    same_update(None, &w1, &Request::new("m", "example.com/v1", "Widget", T0), &cr);
    same_diff(&w1, &w2, &cr);
    same_diff(&w1, &w2, &DeducedSchema);
}

/// Keyed lists long enough for the grouping to switch from a linear search to a map, with duplicates and
/// items without keys past that point.
#[test]
fn long_keyed_lists_match_the_reference() {
    let schema = BuiltinSchema::for_kind("v1", "Pod");
    let env = |n: usize, shift: usize| -> Value {
        let mut items: Vec<Value> =
            (0..n).map(|i| json!({"name": format!("V{}", (i + shift) % n), "value": i})).collect();
        items.push(json!({"name": "V3", "value": "dup"}));
        Value::Array(items)
    };
    let with_env = |e: Value| {
        let mut pod = created_pod(9);
        pod["spec"]["containers"][0]["env"] = e;
        pod
    };
    let a = with_env(env(40, 0));
    let b = with_env(env(40, 7));
    let mut c = with_env(env(30, 0));
    c["spec"]["containers"][0]["env"].as_array_mut().expect("env").push(json!({"value": "no name"}));
    let req = Request::new("m", "v1", "Pod", T1);
    for (x, y) in [(&a, &b), (&b, &a), (&a, &c), (&c, &c), (&b, &b)] {
        same_diff(x, y, &schema);
        let live = same_update(None, x, &req, &schema);
        same_update(Some(&live), y, &Request::new("other", "v1", "Pod", T2), &schema);
    }
}

/// Sets `patch`'s members in `target`, recursively for objects (a JSON merge patch that keeps nulls).
fn merge_into(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge_into(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[test]
fn in_place_set_operations_match_the_copying_ones() {
    let sets: Vec<FieldSet> = [
        r#"{"f:metadata":{".":{},"f:labels":{".":{},"f:a":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{}}}}"#,
        r#"{"f:metadata":{"f:labels":{"f:a":{},"f:b":{}}},"f:spec":{".":{},"f:template":{}}}"#,
        r#"{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{}}}},"f:status":{}}"#,
        r#"{"f:metadata":{},"f:spec":{}}"#,
        "{}",
    ]
    .iter()
    .map(|t| fields(t))
    .chain([crate::update::strip_set().clone()])
    .collect();
    for a in &sets {
        for b in &sets {
            let mut d = a.clone();
            d.remove_all(b);
            assert_eq!(d, a.difference(b));
            let mut r = a.clone();
            r.remove_recursively(b);
            assert_eq!(r, a.recursive_difference(b));
            let mut u = a.clone();
            u.union_with(b.clone());
            assert_eq!(u, a.union(b));
        }
    }
}
