//! Field paths and the causes upstream's `field.Error` produces, with values rendered as kube-apiserver 1.33
//! renders them (`%#v` for maps, selectors and structs, quoted strings, plain numbers).

use std::collections::BTreeMap;

use rkube_apimachinery::Cause;
use serde_json::Value;

/// `p.c`, or `c` at the root.
pub(crate) fn child(p: &str, c: &str) -> String {
    if p.is_empty() { c.to_owned() } else { format!("{p}.{c}") }
}

/// `p[i]`.
pub(crate) fn idx(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}

/// `p[k]`: upstream's `Path.Key` writes map keys unquoted.
pub(crate) fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}

/// `Required value[: detail]`.
pub(crate) fn required(f: &str, detail: &str) -> Cause {
    Cause::required(f, detail)
}

/// `Forbidden: detail`.
pub(crate) fn forbidden(f: &str, detail: &str) -> Cause {
    Cause::forbidden(f, detail)
}

/// `Invalid value: "s": detail`.
pub(crate) fn invalid_str(f: &str, s: &str, detail: &str) -> Cause {
    Cause::invalid(f, &Value::String(s.to_owned()), detail)
}

/// `Invalid value: 5: detail`.
pub(crate) fn invalid_int(f: &str, n: i64, detail: &str) -> Cause {
    Cause::invalid(f, &Value::from(n), detail)
}

/// `Invalid value: <any JSON value>: detail` (strings quoted, the rest as JSON).
pub(crate) fn invalid(f: &str, v: &Value, detail: &str) -> Cause {
    Cause::invalid(f, v, detail)
}

/// `Invalid value: <raw>: detail` where `raw` is already rendered (Go's `%#v` of a map or struct).
pub(crate) fn invalid_raw(f: &str, raw: &str, detail: &str) -> Cause {
    let message =
        if detail.is_empty() { format!("Invalid value: {raw}") } else { format!("Invalid value: {raw}: {detail}") };
    Cause { reason: "FieldValueInvalid".into(), message, field: f.into() }
}

/// `Unsupported value: "x": supported values: "a", "b"`.
pub(crate) fn not_supported(f: &str, v: &Value, supported: &[&str]) -> Cause {
    Cause::not_supported(f, v, supported)
}

/// `Unsupported value: <raw>: supported values: ...` for a value already rendered (a struct).
pub(crate) fn not_supported_raw(f: &str, raw: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!("Unsupported value: {raw}: supported values: {}", list.join(", ")),
        field: f.into(),
    }
}

/// `Unsupported value: "x": ...` for a string value.
pub(crate) fn not_supported_str(f: &str, s: &str, supported: &[&str]) -> Cause {
    Cause::not_supported(f, &Value::String(s.to_owned()), supported)
}

/// `Duplicate value: "x"` (strings quoted, numbers plain).
pub(crate) fn duplicate(f: &str, v: &Value) -> Cause {
    Cause::duplicate(f, v)
}

/// `Duplicate value: <raw>` for a value already rendered (a struct).
pub(crate) fn duplicate_raw(f: &str, raw: &str) -> Cause {
    Cause { reason: "FieldValueDuplicate".into(), message: format!("Duplicate value: {raw}"), field: f.into() }
}

/// `Not found: "x"`.
pub(crate) fn not_found(f: &str, s: &str) -> Cause {
    Cause { reason: "FieldValueNotFound".into(), message: format!("Not found: {s:?}"), field: f.into() }
}

/// `Too long: may not be more than N bytes` (1.33 omits the value).
pub(crate) fn too_long(f: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: may not be more than {max} bytes"),
        field: f.into(),
    }
}

/// `Too many: N: must have at most M items`.
pub(crate) fn too_many(f: &str, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany".into(),
        message: format!("Too many: {actual}: must have at most {max} items"),
        field: f.into(),
    }
}

/// A value as it appears after `Invalid value: `: strings quoted, everything else as JSON.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => q(s),
        other => other.to_string(),
    }
}

/// Go's `%q` of a string (Rust's debug escaping agrees for everything kube accepts).
pub(crate) fn q(s: &str) -> String {
    format!("{s:?}")
}

/// Go's `%#v` of a `map[string]string`: keys sorted, `map[string]string(nil)` when absent.
pub(crate) fn go_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let items: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a map field of a JSON object (absent or null is Go's nil map).
pub(crate) fn go_map_value(v: Option<&Value>) -> String {
    match v.filter(|x| x.is_object()) {
        None => go_map(None),
        Some(x) => go_map(Some(&crate::value::str_map(Some(x)))),
    }
}

/// Go's `%#v` of a `[]string`.
pub(crate) fn go_strings(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Go's `%#v` of a `[]string` field (`[]string(nil)` when absent).
pub(crate) fn go_strings_value(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_owned(),
        Some(a) => go_strings(&a.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
    }
}

/// Go's `%#v` of a `metav1.LabelSelector` (what upstream prints for selector errors).
pub(crate) fn go_selector(sel: &Value) -> String {
    let labels = go_map_value(sel.get("matchLabels"));
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        q(crate::value::s(e, "key")),
                        q(crate::value::s(e, "operator")),
                        go_strings_value(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// How upstream prints a pointer-to-struct value it has no readable form for: as JSON (what 1.34 does), since
/// Go's `%#v` of internal types cannot be reproduced faithfully.
pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}
