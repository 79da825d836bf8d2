//! The columns and cells of each kind's table (upstream's `pkg/printers/internalversion`), and the default
//! Name/Age table for kinds without a printer of their own.

use serde_json::{Value, json};

use super::Column;
use super::age::age_of;
use crate::resource::ResourceDef;

const NAME: Column = ("Name", "string", "name", "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", 0);
const AGE: Column = ("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", 0);

/// The columns of `def`'s table.
pub(super) fn for_kind(def: &ResourceDef) -> Vec<Column> {
    match (def.group.as_str(), def.resource.as_str()) {
        ("", "namespaces") => vec![NAME, ("Status", "string", "", "The status of the namespace", 0), AGE],
        ("", "configmaps") => vec![NAME, ("Data", "string", "", "Data contains the configuration data.", 0), AGE],
        ("", "secrets") => vec![NAME, ("Type", "string", "", "The type of the secret", 0), ("Data", "string", "", "The number of entries in the secret's data", 0), AGE],
        ("", "serviceaccounts") => vec![NAME, ("Secrets", "string", "", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.", 0), AGE],
        _ => vec![NAME, AGE],
    }
}

fn name(o: &Value) -> Value {
    o.pointer("/metadata/name").cloned().unwrap_or(json!(""))
}

fn count(o: &Value, ptr: &str) -> usize {
    o.pointer(ptr).and_then(Value::as_object).map_or(0, |m| m.len())
}

/// The cells of one row.
pub(super) fn cells(def: &ResourceDef, o: &Value) -> Vec<Value> {
    let age = json!(age_of(o.pointer("/metadata/creationTimestamp")));
    match (def.group.as_str(), def.resource.as_str()) {
        ("", "namespaces") => vec![name(o), o.pointer("/status/phase").cloned().unwrap_or(json!("")), age],
        ("", "configmaps") => vec![name(o), json!(count(o, "/data") + count(o, "/binaryData")), age],
        ("", "secrets") => vec![name(o), o.get("type").cloned().unwrap_or(json!("Opaque")), json!(count(o, "/data")), age],
        ("", "serviceaccounts") => vec![name(o), json!(o.get("secrets").and_then(Value::as_array).map_or(0, Vec::len)), age],
        _ => vec![name(o), age],
    }
}
