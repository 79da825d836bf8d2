//! Removing a set of fields from an object (upstream `TypedValue.RemoveItems`): a member path removes the
//! field or item with everything below it; a path that only continues below an element descends into it.

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::path::{FieldPath, PathElement};
use crate::schema::{ListType, MapType, Schema, item_element};

/// `v` without the fields in `set`.
pub(crate) fn remove_items(v: &Value, set: &FieldSet, schema: &dyn Schema) -> Value {
    if set.is_empty() {
        return v.clone();
    }
    remove_at(&mut Vec::new(), v, set, schema).unwrap_or_else(|| Value::Object(Map::new()))
}

/// `None` when nothing is left (upstream leaves its output unset there). Callers drop such fields
/// rather than writing `null`, which upstream's typed conversion would drop for optional fields anyway.
fn remove_at(path: &mut FieldPath, v: &Value, set: &FieldSet, schema: &dyn Schema) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.is_empty() {
                return Some(v.clone());
            }
            if schema.map_type(path) == MapType::Atomic {
                // An atomic map is never partly removed; reaching one with paths below it removes it.
                return None;
            }
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                match set.children.get(&pe) {
                    Some(below) => {
                        path.push(pe);
                        let kept = remove_at(path, child, below, schema);
                        path.pop();
                        if let Some(kept) = kept {
                            out.insert(k.clone(), kept);
                        }
                    }
                    None => {
                        out.insert(k.clone(), child.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Some(v.clone());
            }
            let lt = schema.list_type(path);
            if lt == ListType::Atomic {
                return None;
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_element(schema, path, &lt, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members.contains(&pe) {
                    continue;
                }
                match set.children.get(&pe) {
                    Some(below) => {
                        path.push(pe);
                        let kept = remove_at(path, item, below, schema);
                        path.pop();
                        // An item emptied of every field stays as an empty item, not a null one.
                        out.push(kept.unwrap_or_else(|| Value::Object(Map::new())));
                    }
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        _ => Some(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinSchema;
    use serde_json::json;

    #[test]
    fn removes_fields_and_items() {
        let schema = BuiltinSchema::for_kind("v1", "Pod");
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let set = FieldSet::from_fields_v1_str(
            r#"{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"b\"}":{}}}}"#,
        )
        .expect("parses");
        assert_eq!(
            remove_items(&pod, &set, &schema),
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}})
        );
        let all = FieldSet::from_fields_v1_str(r#"{"f:metadata":{"f:labels":{"f:a":{},"f:b":{}}}}"#).expect("parses");
        assert_eq!(
            remove_items(&json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "n"}}), &all, &schema),
            json!({"metadata": {"name": "n"}})
        );
    }
}
