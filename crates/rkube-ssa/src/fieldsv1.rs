//! The FieldsV1 format of `managedFields[].fieldsV1`: a trie of serialized path elements where `{}` marks a
//! member leaf and `".": {}` marks a member that also has members below it, e.g.
//! `{"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{}}}}}`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::gojson;
use crate::path::PathElement;

/// A FieldsV1 document that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error decoding set: {0}")]
pub struct FieldsV1Error(pub String);

/// One entry at a trie level, in upstream's emission order.
enum Entry<'a> {
    Member(&'a PathElement),
    Child(&'a PathElement, &'a FieldSet),
    Both(&'a PathElement, &'a FieldSet),
}

/// Members and children merged in path-element order, as upstream's `emitContentsV1` walks them.
fn entries(s: &FieldSet) -> Vec<Entry<'_>> {
    let mut out = Vec::with_capacity(s.members.len() + s.children.len());
    let mut members = s.members.iter().peekable();
    let mut children = s.children.iter().peekable();
    loop {
        match (members.peek(), children.peek()) {
            (Some(m), Some((c, set))) => match (*m).cmp(c) {
                Ordering::Less => {
                    out.push(Entry::Member(m));
                    members.next();
                }
                Ordering::Greater => {
                    out.push(Entry::Child(c, set));
                    children.next();
                }
                Ordering::Equal => {
                    out.push(Entry::Both(c, set));
                    members.next();
                    children.next();
                }
            },
            (Some(m), None) => {
                out.push(Entry::Member(m));
                members.next();
            }
            (None, Some((c, set))) => {
                out.push(Entry::Child(c, set));
                children.next();
            }
            (None, None) => return out,
        }
    }
}

impl FieldSet {
    /// The FieldsV1 JSON exactly as upstream writes it (element order, Go escaping, no spaces).
    pub fn to_fields_v1_string(&self) -> String {
        let mut out = String::from("{");
        emit(self, false, &mut out);
        out.push('}');
        out
    }

    /// The FieldsV1 document as a JSON value. Its structure equals upstream's; serde_json orders object keys
    /// by bytes, which differs from upstream's element order only for `k:`/`v:` keys holding numbers of
    /// different lengths or mixed kinds (JSON objects are unordered, so readers see the same document).
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(to_map(self))
    }

    /// Reads a FieldsV1 document; unknown element prefixes are skipped, as upstream does.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        let Value::Object(m) = v else {
            return Err(FieldsV1Error(format!("expected an object, got {v}")));
        };
        Ok(read(m)?.0.unwrap_or_default())
    }

    /// Reads a FieldsV1 document from its JSON text.
    pub fn from_fields_v1_str(s: &str) -> Result<FieldSet, FieldsV1Error> {
        let v: Value = serde_json::from_str(s).map_err(|e| FieldsV1Error(e.to_string()))?;
        FieldSet::from_fields_v1(&v)
    }
}

fn emit(s: &FieldSet, include_self: bool, out: &mut String) {
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
    };
    if include_self && !s.is_empty() {
        sep(out);
        out.push_str("\".\":{}");
    }
    for e in entries(s) {
        sep(out);
        let (pe, child, member) = match e {
            Entry::Member(pe) => (pe, None, true),
            Entry::Child(pe, c) => (pe, Some(c), false),
            Entry::Both(pe, c) => (pe, Some(c), true),
        };
        gojson::write_string(out, &pe.serialize());
        out.push_str(":{");
        if let Some(c) = child {
            emit(c, member, out);
        }
        out.push('}');
    }
}

fn to_map(s: &FieldSet) -> Map<String, Value> {
    // Collected rather than inserted one by one: a sorted map is then built in bulk.
    entries(s)
        .into_iter()
        .map(|e| {
            let (pe, inner) = match e {
                Entry::Member(pe) => (pe, Map::new()),
                Entry::Child(pe, c) => (pe, to_map(c)),
                Entry::Both(pe, c) => {
                    let mut inner = to_map(c);
                    inner.insert(".".to_owned(), Value::Object(Map::new()));
                    (pe, inner)
                }
            };
            (pe.serialize(), Value::Object(inner))
        })
        .collect()
}

/// Reads one level: the subset below it (`None` when nothing is below) and whether the level is a member.
fn read(m: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), FieldsV1Error> {
    let mut is_member = false;
    let mut members = Vec::new();
    let mut children = BTreeMap::new();
    for (key, v) in m {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::deserialize(key).map_err(FieldsV1Error)? else {
            // A future element type: dropped rather than kept half-understood, as upstream does.
            continue;
        };
        let Value::Object(inner) = v else {
            return Err(FieldsV1Error(format!("expected an object for {key:?}, got {v}")));
        };
        let (grandchildren, child_is_member) = read(inner)?;
        if child_is_member {
            members.push(pe.clone());
        }
        if let Some(g) = grandchildren {
            children.insert(pe, g);
        }
    }
    if members.is_empty() && children.is_empty() {
        // `{}` (or only unknown keys) is a leaf member.
        return Ok((None, true));
    }
    let set = FieldSet { members: members.into_iter().collect(), children };
    Ok((Some(set), is_member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOY: &str = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;

    #[test]
    fn round_trips_byte_for_byte() {
        let s = FieldSet::from_fields_v1_str(DEPLOY).expect("parses");
        assert_eq!(s.to_fields_v1_string(), DEPLOY);
        assert_eq!(FieldSet::from_fields_v1(&s.to_fields_v1()).expect("parses"), s);
        assert_eq!(s.to_fields_v1(), serde_json::from_str::<Value>(DEPLOY).expect("json"));
    }

    #[test]
    fn numeric_keys_follow_element_order() {
        let mut s = FieldSet::new();
        for p in [9000, 10000] {
            s.insert(&[PathElement::field("ports"), PathElement::key([("port", json!(p))])]);
        }
        assert_eq!(s.to_fields_v1_string(), r#"{"f:ports":{"k:{\"port\":9000}":{},"k:{\"port\":10000}":{}}}"#);
    }

    #[test]
    fn empty_set_and_errors() {
        assert_eq!(FieldSet::new().to_fields_v1_string(), "{}");
        assert!(FieldSet::from_fields_v1_str("{}").expect("parses").is_empty());
        assert!(FieldSet::from_fields_v1_str(r#"{"f:a":1}"#).is_err());
        assert!(FieldSet::from_fields_v1_str(r#"{"x":{}}"#).is_err());
        let unknown = FieldSet::from_fields_v1_str(r#"{"z:a":{},"f:b":{}}"#).expect("parses");
        assert_eq!(unknown.to_fields_v1_string(), r#"{"f:b":{}}"#);
    }
}
