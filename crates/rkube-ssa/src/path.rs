//! Field paths: the elements that select a field, a list item by key, a set item by value, or an index;
//! their order, their human form (`.spec.containers[name="nginx"].image`) and their FieldsV1 form (`f:`, `k:`, `v:`, `i:`).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use crate::{gojson, value};

/// One step of a field path (upstream `fieldpath.PathElement`).
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of an object (`f:name`).
    Field(String),
    /// An item of an associative list, by its key fields sorted by name (`k:{"name":"nginx"}`).
    Key(Vec<(String, Value)>),
    /// An item of a set, by its value (`v:"x"`).
    Value(Value),
    /// An item of a list by position (`i:0`); upstream never produces these for atomic lists, but reads them.
    Index(usize),
}

/// A path from the object root.
pub type FieldPath = Vec<PathElement>;

impl PathElement {
    /// A field element.
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    /// A key element; the fields are sorted by name, as upstream keeps them.
    pub fn key<I, K>(fields: I) -> Self
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        let mut fields: Vec<(String, Value)> = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 form: `f:name`, `k:{"name":"nginx"}`, `v:"x"`, `i:0`.
    pub fn serialize(&self) -> String {
        let mut out = String::with_capacity(match self {
            PathElement::Field(name) => 2 + name.len(),
            _ => 32,
        });
        match self {
            // Field names are written raw (upstream uses WriteRaw); JSON escaping happens when the key is written.
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    gojson::write_string(&mut out, name);
                    out.push(':');
                    gojson::write_value(&mut out, v);
                }
                out.push('}');
            }
            PathElement::Value(v) => {
                out.push_str("v:");
                gojson::write_value(&mut out, v);
            }
            PathElement::Index(i) => {
                out.push_str("i:");
                out.push_str(&i.to_string());
            }
        }
        out
    }

    /// Parses the FieldsV1 form. `Ok(None)` for an unknown prefix, which upstream skips (a future format).
    pub fn deserialize(s: &str) -> Result<Option<Self>, String> {
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err("key must be 2 characters long:".to_owned());
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = s.get(2..).unwrap_or_default();
        match bytes[0] {
            b'f' => Ok(Some(PathElement::Field(rest.to_owned()))),
            b'v' => serde_json::from_str::<Value>(rest).map(|v| Some(PathElement::Value(v))).map_err(|e| e.to_string()),
            b'k' => match serde_json::from_str::<Value>(rest).map_err(|e| e.to_string())? {
                Value::Object(m) => Ok(Some(PathElement::key(m))),
                other => Err(format!("expected a key object, got {other}")),
            },
            b'i' => rest.parse::<usize>().map(|i| Some(PathElement::Index(i))).map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value::compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{k}={}", value::to_path_string(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_path_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as upstream prints it in conflicts and errors: `.spec.template.spec.containers[name="nginx"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A path of field names, for building paths in code: `field_path(&["spec", "replicas"])`.
pub fn field_path(names: &[&str]) -> FieldPath {
    names.iter().map(|n| PathElement::field(*n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_each_kind() {
        assert_eq!(PathElement::field("image").serialize(), "f:image");
        let k = PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]);
        assert_eq!(k.serialize(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::Value(json!("a")).serialize(), r#"v:"a""#);
        assert_eq!(PathElement::Index(3).serialize(), "i:3");
    }

    #[test]
    fn deserializes_and_skips_unknown() {
        let k = PathElement::deserialize(r#"k:{"protocol":"TCP","containerPort":80}"#);
        assert_eq!(k, Ok(Some(PathElement::key([("containerPort", json!(80)), ("protocol", json!("TCP"))]))));
        assert_eq!(PathElement::deserialize("z:whatever"), Ok(None));
        assert!(PathElement::deserialize("f").is_err());
        assert!(PathElement::deserialize("fx").is_err());
        assert!(PathElement::deserialize(r#"k:{"a":1} x"#).is_err());
    }

    #[test]
    fn prints_paths_like_upstream() {
        let p = vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key([("name", json!("nginx"))]),
            PathElement::field("ports"),
            PathElement::key([("containerPort", json!(80)), ("protocol", json!("TCP"))]),
        ];
        assert_eq!(path_string(&p), r#".spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"]"#);
        assert_eq!(path_string(&[PathElement::field("f"), PathElement::Value(json!("x"))]), r#".f[="x"]"#);
    }

    #[test]
    fn orders_fields_before_keys_values_indices() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!(1)),
            PathElement::key([("a", json!(1))]),
            PathElement::field("z"),
        ];
        v.sort();
        assert!(matches!(v[0], PathElement::Field(_)));
        assert!(matches!(v[3], PathElement::Index(_)));
    }
}
