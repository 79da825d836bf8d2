//! Simple JSON paths (`.spec.replicas`) as the scale subresource names them, and field-path spelling for causes.

use serde_json::{Map, Value};

/// Why [`set_path`] could not set a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path has an empty segment (`.spec..replicas`) or names no field at all.
    #[error("invalid path {0:?}: must be a dot-separated list of field names")]
    Invalid(String),
    /// A value on the way is not an object, so the field cannot be created in it (upstream's wording).
    #[error("value cannot be set because {0} is not a map[string]interface{{}}")]
    NotAnObject(String),
}

/// The field names of `.a.b.c` (the leading dot is optional, as upstream ignores it); `None` when a segment is empty.
fn segments(path: &str) -> Option<Vec<&str>> {
    let trimmed = path.strip_prefix('.').unwrap_or(path);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) { None } else { Some(parts) }
}

/// The value at a simple JSON path such as `.spec.replicas` or `.status.labelSelector`; `None` when any
/// step is missing or not an object. An empty path (or `.`) names `obj` itself.
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in segments(path)? {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Sets the value at a simple JSON path, creating missing (or null) objects on the way, as upstream's
/// `unstructured.SetNestedField` does for the scale subresource.
pub fn set_path(obj: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
    let segs = segments(path).ok_or_else(|| PathError::Invalid(path.to_owned()))?;
    let Some((last, parents)) = segs.split_last() else {
        return Err(PathError::Invalid(path.to_owned()));
    };
    let mut cur = obj;
    let mut walked = String::new();
    for seg in parents {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().ok_or_else(|| PathError::NotAnObject(not_map_path(&walked)))?;
        walked.push('.');
        walked.push_str(seg);
        cur = map.entry(seg.to_string()).or_insert(Value::Null);
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    let map = cur.as_object_mut().ok_or_else(|| PathError::NotAnObject(not_map_path(&walked)))?;
    map.insert((*last).to_owned(), value);
    Ok(())
}

fn not_map_path(walked: &str) -> String {
    if walked.is_empty() { ".".to_owned() } else { walked.to_owned() }
}

/// `p.name` as `field.Path.Child` spells it (no leading dot at the root).
pub(crate) fn child(p: &str, name: &str) -> String {
    if p.is_empty() { name.to_owned() } else { format!("{p}.{name}") }
}

/// `p[key]` as `field.Path.Key` spells it.
pub(crate) fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

/// `p[i]` as `field.Path.Index` spells it.
pub(crate) fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gets_nested_values() {
        let obj = json!({"spec": {"replicas": 3}, "status": {"selector": "a=b"}});
        assert_eq!(get_path(&obj, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(get_path(&obj, "status.selector"), Some(&json!("a=b")));
        assert_eq!(get_path(&obj, ".spec.missing"), None);
        assert_eq!(get_path(&obj, ".spec.replicas.deeper"), None);
        assert_eq!(get_path(&obj, ".spec..replicas"), None);
        assert_eq!(get_path(&obj, ""), Some(&obj));
    }

    #[test]
    fn sets_and_creates_intermediate_objects() {
        let mut obj = json!({"spec": null});
        set_path(&mut obj, ".spec.replicas", json!(2)).expect("set");
        set_path(&mut obj, ".status.replicas", json!(1)).expect("set");
        assert_eq!(obj, json!({"spec": {"replicas": 2}, "status": {"replicas": 1}}));
    }

    #[test]
    fn refuses_to_walk_through_scalars() {
        let mut obj = json!({"spec": 5});
        let err = set_path(&mut obj, ".spec.replicas", json!(2)).expect_err("scalar");
        assert_eq!(err.to_string(), "value cannot be set because .spec is not a map[string]interface{}");
        assert!(matches!(set_path(&mut obj, ".", json!(1)), Err(PathError::Invalid(_))));
    }
}
