//! Walks of one object against a schema: the set of fields it sets (upstream `ToFieldSet`), the validation
//! upstream does when it converts an applied configuration, and the named-field completion prune relies on.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fieldset::FieldSet;
use crate::path::{FieldPath, PathElement, path_string};
use crate::schema::{ListType, MapType, Schema, item_element};

/// The fields an object sets, as upstream records them for an applier: scalars, atomic lists and maps,
/// list items, null and empty-map fields, and every key of a free-form map.
pub fn fieldset(obj: &Value, schema: &dyn Schema) -> FieldSet {
    let mut set = FieldSet::new();
    to_set(obj, &mut Vec::new(), &mut set, schema);
    set
}

fn to_set(v: &Value, path: &mut FieldPath, set: &mut FieldSet, schema: &dyn Schema) {
    match v {
        Value::Object(m) => {
            let mt = schema.map_type(path);
            if mt == MapType::Atomic {
                set.insert(path);
                return;
            }
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                to_set(child, path, set, schema);
                let empty_map = child.as_object().is_some_and(serde_json::Map::is_empty);
                // Declared fields are owned through their leaves; null, empty maps and free-form keys are owned themselves.
                if child.is_null() || empty_map || mt == MapType::Map {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let lt = schema.list_type(path);
            if lt == ListType::Atomic {
                set.insert(path);
                return;
            }
            let elements: Vec<Option<PathElement>> =
                items.iter().map(|i| item_element(schema, path, &lt, i).ok()).collect();
            let mut seen = BTreeSet::new();
            let mut duplicates = BTreeSet::new();
            for pe in elements.iter().flatten() {
                if !seen.insert(pe) {
                    duplicates.insert(pe);
                }
            }
            for (item, pe) in items.iter().zip(&elements) {
                let Some(pe) = pe else { continue };
                path.push(pe.clone());
                // Duplicated items are owned as a whole, without their fields, as upstream does.
                if !duplicates.contains(pe) {
                    to_set(item, path, set, schema);
                }
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
}

/// Upstream's structural validation of an object being converted for merging: list items must carry their
/// keys (or have defaults), sets must hold scalars, and, unless `allow_duplicates`, keys must be unique.
/// Returns upstream's error text (`.spec.x: duplicate entries for key [name="a"]`, several as `errors:\n  ...`).
pub(crate) fn validate(obj: &Value, schema: &dyn Schema, allow_duplicates: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    check(obj, &mut Vec::new(), schema, allow_duplicates, &mut errors);
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("errors:\n  {}", errors.join("\n  "))),
    }
}

fn located(path: &[PathElement], msg: &str) -> String {
    if path.is_empty() { msg.to_owned() } else { format!("{}: {msg}", path_string(path)) }
}

fn check(v: &Value, path: &mut FieldPath, schema: &dyn Schema, allow_duplicates: bool, errors: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if schema.map_type(path) == MapType::Atomic {
                return;
            }
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                check(child, path, schema, allow_duplicates, errors);
                path.pop();
            }
        }
        Value::Array(items) => {
            let lt = schema.list_type(path);
            if lt == ListType::Atomic {
                return;
            }
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item_element(schema, path, &lt, item) {
                    Err(e) => errors.push(located(path, &format!("element {i}: {e}"))),
                    Ok(pe) => {
                        if !seen.insert(pe.clone()) && !allow_duplicates {
                            errors.push(located(path, &format!("duplicate entries for key {pe}")));
                            continue;
                        }
                        path.push(pe);
                        check(item, path, schema, allow_duplicates, errors);
                        path.pop();
                    }
                }
            }
        }
        _ => {}
    }
}

/// The set plus every declared (struct) field that has members below it, so that removing items also
/// removes the structs that contain them (upstream `EnsureNamedFieldsAreMembers`).
pub(crate) fn ensure_named_fields_are_members(set: &FieldSet, schema: &dyn Schema) -> FieldSet {
    ensure_named(set, schema, &mut Vec::new())
}

fn ensure_named(set: &FieldSet, schema: &dyn Schema, path: &mut FieldPath) -> FieldSet {
    let mut out = FieldSet { members: set.members.clone(), children: Default::default() };
    // Free-form maps have no declared fields; structs (atomic ones included) do.
    let declared = schema.map_type(path) != MapType::Map;
    for (pe, child) in &set.children {
        let below = match pe {
            PathElement::Field(_) => {
                if declared {
                    out.members.insert(pe.clone());
                }
                path.push(pe.clone());
                let c = ensure_named(child, schema, path);
                path.pop();
                c
            }
            PathElement::Key(_) => {
                path.push(pe.clone());
                let c = ensure_named(child, schema, path);
                path.pop();
                c
            }
            // Upstream resolves no type below set values and indices, so nothing is added there.
            PathElement::Value(_) | PathElement::Index(_) => child.clone(),
        };
        out.children.insert(pe.clone(), below);
    }
    out
}

/// `v` without `metadata.managedFields`, which never take part in diffs.
pub(crate) fn without_managed_fields(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinSchema;
    use serde_json::json;

    #[test]
    fn applied_deployment_fieldset() {
        let schema = BuiltinSchema::for_kind("apps/v1", "Deployment");
        let obj = json!({
            "metadata": {"name": "n", "labels": {"app": "a"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}], "args": ["x"], "securityContext": {}}]}}}
        });
        let got = fieldset(&obj, &schema).to_fields_v1_string();
        assert_eq!(
            got,
            r#"{"f:metadata":{"f:labels":{"f:app":{}},"f:name":{}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:args":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}},"f:securityContext":{}}}}}}}"#
        );
    }

    #[test]
    fn validation_messages() {
        let schema = BuiltinSchema::for_kind("apps/v1", "Deployment");
        let dup = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A"}, {"name": "A"}]}]}}}});
        assert_eq!(
            validate(&dup, &schema, false),
            Err(r#".spec.template.spec.containers[name="c"].env: duplicate entries for key [name="A"]"#.to_owned())
        );
        assert!(validate(&dup, &schema, true).is_ok());
        let two = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}], "volumes": [{"name": "v"}, {"name": "v"}]}}}});
        let err = validate(&two, &schema, false).expect_err("invalid");
        assert!(
            err.starts_with("errors:\n  .spec.template.spec.containers: element 0: associative list with keys"),
            "{err}"
        );
    }

    #[test]
    fn named_fields_become_members() {
        let schema = BuiltinSchema::for_kind("v1", "ConfigMap");
        let set = FieldSet::from_fields_v1_str(r#"{"f:metadata":{"f:labels":{"f:a":{}}},"f:data":{"f:k":{}}}"#)
            .expect("parses");
        let got = ensure_named_fields_are_members(&set, &schema).to_fields_v1_string();
        assert_eq!(got, r#"{"f:data":{".":{},"f:k":{}},"f:metadata":{".":{},"f:labels":{".":{},"f:a":{}}}}"#);
    }
}
