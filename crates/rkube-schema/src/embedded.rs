//! TypeMeta checks of embedded resources (`x-kubernetes-embedded-resource`), as upstream's objectmeta validation.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::messages::{invalid, required};
use crate::node::Node;
use crate::path::{child, index, key};

/// Walks `x` (at field path `p`) and checks every embedded object's `apiVersion` and `kind`. The resource
/// root itself is not checked here: the API server checks the object's own TypeMeta.
pub(crate) fn validate(s: &Node, x: &Value, p: &str, out: &mut Vec<Cause>) {
    match x {
        Value::Object(m) => {
            if s.embedded {
                type_meta(m, p, out);
            }
            for (k, v) in m {
                if let Some(prop) = s.properties.get(k) {
                    validate(prop, v, &child(p, k), out);
                } else if let Some(a) = s.additional.as_ref().and_then(|a| a.schema()) {
                    validate(a, v, &key(p, k), out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for (i, v) in a.iter().enumerate() {
                    validate(items, v, &index(p, i), out);
                }
            }
        }
        _ => {}
    }
}

fn type_meta(m: &serde_json::Map<String, Value>, p: &str, out: &mut Vec<Cause>) {
    let (av, kind) = (child(p, "apiVersion"), child(p, "kind"));
    match m.get("apiVersion") {
        None => out.push(required(&av, "")),
        Some(Value::String(s)) if s.is_empty() => out.push(invalid(&av, &Value::from(""), "must not be empty")),
        Some(Value::String(s)) if s.matches('/').count() > 1 => {
            out.push(invalid(&av, &Value::from(s.as_str()), &format!("unexpected GroupVersion string: {s}")));
        }
        Some(Value::String(_)) => {}
        Some(other) => out.push(invalid(&av, other, "must be a string")),
    }
    match m.get("kind") {
        None => out.push(required(&kind, "")),
        Some(Value::String(s)) if s.is_empty() => out.push(invalid(&kind, &Value::from(""), "must not be empty")),
        Some(Value::String(s)) => {
            let errs = dns1035_label(&s.to_lowercase());
            if !errs.is_empty() {
                let detail = format!("may have mixed case, but should otherwise match: {}", errs.join(","));
                out.push(invalid(&kind, &Value::from(s.as_str()), &detail));
            }
        }
        Some(other) => out.push(invalid(&kind, other, "must be a string")),
    }
}

/// upstream's IsDNS1035Label messages.
fn dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    let b = v.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        // The double space before "or" is upstream's.
        errs.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    errs
}
