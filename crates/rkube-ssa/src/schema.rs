//! What the merge needs to know about an object's structure, asked by path: how each list merges, which
//! maps are atomic or free-form, key defaults, and the kind's empty object. Callers implement [`Schema`];
//! [`crate::BuiltinSchema`] covers the built-in kinds and [`DeducedSchema`] objects with no schema at all.

use serde_json::{Map, Value};

use crate::path::PathElement;

/// How a list merges (OpenAPI `x-kubernetes-list-type`, or the `patchStrategy` fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole and owned as one field (the default for lists without a type).
    Atomic,
    /// A set of scalars, merged by value (`x-kubernetes-list-type: set`).
    Set,
    /// A list of objects merged by these key fields (`x-kubernetes-list-type: map` with `list-map-keys`).
    Map(Vec<String>),
}

/// How an object merges (OpenAPI `x-kubernetes-map-type` and whether its properties are declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// A struct: its keys are declared fields, merged one by one.
    Struct,
    /// A free-form map (`additionalProperties`, like labels): its keys are merged one by one and each is owned.
    Map,
    /// Replaced as a whole and owned as one field (`x-kubernetes-map-type: atomic`).
    Atomic,
}

/// Structure questions, asked with the path of the list or object from the object root (list items appear as
/// `Key`/`Value` elements). Implementations must answer the same way for the same path.
pub trait Schema {
    /// How the list at `path` merges. Unknown lists should be [`ListType::Atomic`], as upstream treats them.
    fn list_type(&self, path: &[PathElement]) -> ListType;

    /// How the object at `path` merges; [`MapType::Struct`] unless known otherwise.
    fn map_type(&self, _path: &[PathElement]) -> MapType {
        MapType::Struct
    }

    /// Whether the object at `path` is atomic.
    fn is_atomic_map(&self, path: &[PathElement]) -> bool {
        self.map_type(path) == MapType::Atomic
    }

    /// The default of key field `key` for items of the associative list at `path` that omit it
    /// (e.g. `protocol: TCP` for container ports), as OpenAPI defaults on key fields.
    fn key_default(&self, _path: &[PathElement], _key: &str) -> Option<Value> {
        None
    }

    /// The kind's empty object as upstream's typed zero value shows it (non-pointer structs present, nil
    /// slices as null), e.g. `{"spec":{"template":{"metadata":{},"spec":{"containers":null}}}}`. It is the
    /// "before" of a create and decides which new maps and lists count as added (and get a `.` entry).
    fn empty_object(&self) -> Value {
        Value::Object(Map::new())
    }
}

/// The schema of objects without one (upstream's deduced type): every list atomic, every object a free-form map.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeducedSchema;

impl Schema for DeducedSchema {
    fn list_type(&self, _path: &[PathElement]) -> ListType {
        ListType::Atomic
    }

    fn map_type(&self, _path: &[PathElement]) -> MapType {
        MapType::Map
    }
}

/// The path element of a list item in an associative list, or upstream's error text.
pub(crate) fn item_element(
    schema: &dyn Schema,
    path: &[PathElement],
    lt: &ListType,
    item: &Value,
) -> Result<PathElement, String> {
    match lt {
        ListType::Atomic => Err("invalid indexing of non-associative list".to_owned()),
        ListType::Set => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".to_owned()),
            Value::Array(_) => Err("not supported: associative list with lists as elements".to_owned()),
            Value::Null => Err("associative list without keys has an element that's an explicit null".to_owned()),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListType::Map(keys) => {
            let m = match item {
                Value::Object(m) => m,
                Value::Null => return Err("associative list with keys may not have a null element".to_owned()),
                _ => return Err("associative list with keys may not have non-map elements".to_owned()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(v) = m.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = schema.key_default(path, k) {
                    fields.push((k.clone(), d));
                }
                // A key without value or default is left out: that item is a different entry.
            }
            if !keys.is_empty() && fields.is_empty() {
                let quoted: Vec<String> = keys.iter().map(|k| crate::gojson::go_quote(k)).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    quoted.join(" ")
                ));
            }
            Ok(PathElement::key(fields))
        }
    }
}

/// The JSON kind of a value that decides how it is walked; `None` for null, which takes the other side's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar,
    Map,
    List,
}

pub(crate) fn kind(v: &Value) -> Option<Kind> {
    match v {
        Value::Null => None,
        Value::Object(_) => Some(Kind::Map),
        Value::Array(_) => Some(Kind::List),
        _ => Some(Kind::Scalar),
    }
}

/// Whether an optional map/list side is absent, null or empty (upstream's "empty promotes to leaf").
pub(crate) fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_elements_and_errors() {
        let lt = ListType::Map(vec!["containerPort".into(), "protocol".into()]);
        let pe = item_element(&DeducedSchema, &[], &lt, &json!({"containerPort": 80})).expect("keyed");
        assert_eq!(pe.serialize(), r#"k:{"containerPort":80}"#);
        let err = item_element(&DeducedSchema, &[], &ListType::Map(vec!["name".into()]), &json!({"image": "x"}));
        assert_eq!(
            err,
            Err(r#"associative list with keys has an element that omits all key fields ["name"] (and doesn't have default values for any key fields)"#.to_owned())
        );
        assert!(item_element(&DeducedSchema, &[], &ListType::Set, &json!({})).is_err());
        assert_eq!(item_element(&DeducedSchema, &[], &ListType::Set, &json!("a")), Ok(PathElement::Value(json!("a"))));
    }
}
