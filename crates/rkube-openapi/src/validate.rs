//! Strict field validation: the fields of an object that its schema does not know.
//!
//! Paths are named as upstream's strict JSON decoder names them (`spec.containers[0].imagee`,
//! `metadata.foo`, `spec.foo`). Built-in kinds are judged as Go decodes them into typed structs: an object schema without a field
//! list (`RawExtension`, `FieldsV1`) holds raw JSON, and a map (`additionalProperties`) takes any key.
//! Custom resources are judged as upstream prunes them: an object schema without fields keeps none,
//! unless it says `x-kubernetes-preserve-unknown-fields`; `x-kubernetes-embedded-resource` objects keep
//! `apiVersion`, `kind` and a typed `metadata`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::defs::V2_REF;
use crate::types::OBJECT_META;

/// Upstream's decoder stops collecting strict errors after this many.
const MAX_ERRORS: usize = 100;

/// How a schema without a field list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Built-in types: such an object holds raw JSON, any content is accepted.
    Typed,
    /// Custom resource schemas: such an object keeps no unknown fields.
    Structural,
}

/// Walks objects against schemas whose references resolve in `defs` (Swagger 2.0 form).
pub(crate) struct Walker<'a> {
    defs: &'a BTreeMap<String, Value>,
    out: Vec<String>,
}

impl<'a> Walker<'a> {
    /// A walker over these definitions.
    pub(crate) fn new(defs: &'a BTreeMap<String, Value>) -> Self {
        Self { defs, out: Vec::new() }
    }

    /// The unknown field paths of `value` under `schema`, in document order, without duplicates.
    pub(crate) fn unknown_fields(mut self, schema: &Value, value: &Value, mode: Mode) -> Vec<String> {
        let mut path = String::new();
        self.walk(schema, value, &mut path, mode);
        self.out
    }

    /// Follows `$ref`s; entering a built-in definition switches to typed judgement.
    fn resolve<'s>(&self, mut schema: &'s Value, mode: &mut Mode) -> Option<&'s Value>
    where
        'a: 's,
    {
        // A bound on hops, in case of a reference cycle without content.
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else { return Some(schema) };
            schema = self.defs.get(r.strip_prefix(V2_REF)?)?;
            *mode = Mode::Typed;
        }
        None
    }

    fn walk(&mut self, schema: &Value, value: &Value, path: &mut String, mut mode: Mode) {
        if self.out.len() >= MAX_ERRORS {
            return;
        }
        let Some(schema) = self.resolve(schema, &mut mode) else { return };
        match value {
            Value::Object(map) => self.object(schema, map, path, mode),
            Value::Array(items) => {
                let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) else { return };
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item_schema, item, path, mode);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn object(&mut self, schema: &Value, map: &Map<String, Value>, path: &mut String, mode: Mode) {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let map_values = additional.filter(|a| a.is_object());
        let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let embedded =
            mode == Mode::Structural && schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
        if props.is_none() && map_values.is_none() {
            let untyped = schema.get("type").and_then(Value::as_str) != Some("object");
            if mode == Mode::Typed || preserve || (untyped && !embedded) {
                return;
            }
        }
        let meta_ref = Value::String(format!("{V2_REF}{OBJECT_META}"));
        for (key, child) in map {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            if let Some(s) = props.and_then(|p| p.get(key)) {
                self.walk(s, child, path, mode);
            } else if embedded && (key == "apiVersion" || key == "kind") {
            } else if embedded && key == "metadata" {
                let meta = serde_json::json!({ "$ref": meta_ref });
                self.walk(&meta, child, path, mode);
            } else if let Some(s) = map_values {
                self.walk(s, child, path, mode);
            } else if !(preserve || additional == Some(&Value::Bool(true))) {
                self.report(path);
            }
            path.truncate(len);
        }
    }

    fn report(&mut self, path: &str) {
        if self.out.len() < MAX_ERRORS && !self.out.iter().any(|p| p == path) {
            self.out.push(path.to_owned());
        }
    }
}

/// Upstream's message for one unknown field, also the text of its `Warn`-mode warning:
/// `unknown field "spec.foo"`.
pub fn unknown_field_message(path: &str) -> String {
    format!("unknown field {}", go_quote(path))
}

/// Upstream's `Strict`-mode error message, or `None` when there is nothing to report:
/// `strict decoding error: unknown field "a", unknown field "b"`.
pub fn strict_decoding_error(paths: &[String]) -> Option<String> {
    if paths.is_empty() {
        return None;
    }
    let fields: Vec<String> = paths.iter().map(|p| unknown_field_message(p)).collect();
    Some(format!("strict decoding error: {}", fields.join(", ")))
}

/// Quotes like Go's `strconv.Quote`, which upstream uses to name fields (escapes quotes, backslashes
/// and control characters).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(unknown_field_message("spec.foo"), r#"unknown field "spec.foo""#);
        assert_eq!(
            strict_decoding_error(&["a".into(), "b".into()]).as_deref(),
            Some(r#"strict decoding error: unknown field "a", unknown field "b""#)
        );
        assert_eq!(strict_decoding_error(&[]), None);
        assert_eq!(go_quote("a\"b\u{1}"), r#""a\"b\x01""#);
    }
}
