//! Small accessors over `serde_json::Value` in upstream's JSON shapes, where a missing field and `null` both mean Go's zero value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The string at `k`, or "" (Go's zero value) when missing, null or not a string.
pub(crate) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// The string at `k` when present (a pointer field that is set).
pub(crate) fn opt_s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Whether `k` is present and not null (a pointer field that is set).
pub(crate) fn has(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

/// The value at `k` when present and not null.
pub(crate) fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

/// The array at `k`, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The object at `k`, if any.
pub(crate) fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

/// The integer at `k`, if any (integral floats count: YAML clients sometimes send `1.0`).
pub(crate) fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(as_int)
}

/// A value as an integer, accepting integral floats.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
}

/// The boolean at `k`, false when missing.
pub(crate) fn bool_at(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// A `map[string]string` field (labels, selectors, node selectors); non-string values are skipped.
pub(crate) fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default()
}

/// The strings of a `[]string` field.
pub(crate) fn str_list<'a>(v: &'a Value, k: &str) -> Vec<&'a str> {
    arr(v, k).iter().filter_map(Value::as_str).collect()
}

/// The object at `k` of `v` for writing, created when missing or null; `None` when `v` is not an object
/// or `k` holds something other than an object (left for validation to report).
pub(crate) fn child_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Map<String, Value>> {
    let o = v.as_object_mut()?;
    let slot = o.entry(k.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Sets `k` to `value` when it is missing or null, as Go defaulting does for zero values.
pub(crate) fn set_default(o: &mut Map<String, Value>, k: &str, value: Value) {
    match o.get(k) {
        Some(x) if !x.is_null() => {}
        _ => {
            o.insert(k.to_owned(), value);
        }
    }
}

/// Sets `k` when missing, null or the empty string (Go defaults string fields that are "").
pub(crate) fn set_default_str(o: &mut Map<String, Value>, k: &str, value: &str) {
    match o.get(k) {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(x) if !x.is_null() && !x.is_string() => {}
        _ => {
            o.insert(k.to_owned(), Value::String(value.to_owned()));
        }
    }
}

/// Runs `f` on every object in the array at `k` of `o`.
pub(crate) fn each_mut(o: &mut Map<String, Value>, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = o.get_mut(k).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

/// The object at `k` of `o` for writing when it exists (not created).
pub(crate) fn existing_mut<'a>(o: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Value> {
    o.get_mut(k).filter(|x| x.is_object())
}

/// A copy without null fields (Go decodes `null` as the zero value, so they compare equal to absence).
pub(crate) fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k.clone(), strip_nulls(x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Equality that treats absent and null fields alike.
pub(crate) fn zero_eq(a: &Value, b: &Value) -> bool {
    strip_nulls(a) == strip_nulls(b)
}

/// The object itself for writing (kinds whose fields sit at the top level, like PriorityClass).
pub(crate) fn child_or_root(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}
