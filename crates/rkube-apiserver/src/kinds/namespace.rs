//! Namespaces: DNS-label names, the `kubernetes` finalizer, phase Active/Terminating.

use serde_json::{Value, json};

use super::Strategy;
use crate::meta::{NameRule, meta_mut};

/// The namespace strategy.
pub(super) struct Namespace;

/// The one instance.
pub(super) static NAMESPACE: Namespace = Namespace;

impl Strategy for Namespace {
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn prepare_create(&self, obj: &mut Value) {
        // The namespace controller removes this finalizer once the namespace is empty (upstream's "kubernetes" finalizer).
        obj["spec"] = json!({ "finalizers": ["kubernetes"] });
        obj["status"] = json!({ "phase": "Active" });
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        // spec.finalizers only change through the finalize subresource.
        match old.get("spec") {
            Some(s) => new["spec"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("spec");
                }
            }
        }
    }
    fn default(&self, obj: &mut Value) {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    fn selectable_fields(&self) -> Vec<&'static str> {
        vec!["metadata.name", "status.phase"]
    }
    fn prepare_graceful_delete(&self, obj: &mut Value) {
        obj["status"] = json!({ "phase": "Terminating" });
    }
    fn deletion_blocked(&self, obj: &Value) -> bool {
        // A namespace goes only when spec.finalizers is empty too (the finalize subresource empties it).
        obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
    }
    fn reset_status_on_create(&self, _obj: &mut Value) {}
}
