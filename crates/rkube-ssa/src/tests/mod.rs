//! Scenario tests across apply and update, with the shared helpers they use.

mod applies;
mod bench;
mod deployment;
mod fast_paths;
mod lists;
mod reference;
mod updates;
mod upstream_cases;

use serde_json::{Value, json};

use crate::{BuiltinSchema, FieldSet, ManagedFieldsEntry, Operation, Request, managed_fields};

pub(super) const T0: &str = "2024-05-01T10:00:00Z";
pub(super) const T1: &str = "2024-05-01T10:00:05Z";
pub(super) const T2: &str = "2024-05-01T10:00:09Z";

pub(super) fn deploy_schema() -> BuiltinSchema {
    BuiltinSchema::for_kind("apps/v1", "Deployment")
}

pub(super) fn req<'a>(manager: &'a str, now: &'a str) -> Request<'a> {
    Request::new(manager, "apps/v1", "Deployment", now)
}

/// A minimal Deployment as a user would apply it.
pub(super) fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

/// Marks an object as stored (it has a uid), as the registry's objects do after a create.
pub(super) fn stored(mut v: Value) -> Value {
    v["metadata"]["uid"] = json!("0a9d2b9e-779e-11e7-b422-42010a8001be");
    v
}

/// The entry of `manager` (any operation), if any.
pub(super) fn entry(obj: &Value, manager: &str) -> Option<ManagedFieldsEntry> {
    managed_fields(obj).expect("managedFields decode").into_iter().find(|e| e.manager == manager)
}

/// The FieldsV1 text of `manager`'s entry, or "" when it has none.
pub(super) fn owned(obj: &Value, manager: &str) -> String {
    entry(obj, manager).map(|e| e.fields().to_fields_v1_string()).unwrap_or_default()
}

/// `(manager, operation)` of every entry, in stored order.
pub(super) fn managers(obj: &Value) -> Vec<(String, Operation)> {
    managed_fields(obj).expect("managedFields decode").into_iter().map(|e| (e.manager, e.operation)).collect()
}

/// Parses FieldsV1 text, for readable expectations.
pub(super) fn fields(text: &str) -> FieldSet {
    FieldSet::from_fields_v1_str(text).expect("valid FieldsV1")
}
