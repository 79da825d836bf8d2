//! Reading fields of a JSON object the way Go reads a typed one: a missing field is its zero value.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::age::translate_timestamp_since;

/// The string at a JSON pointer, or `""`.
pub(crate) fn str_at<'a>(o: &'a Value, ptr: &str) -> &'a str {
    o.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The string at a JSON pointer, if present and a string.
pub(crate) fn opt_str<'a>(o: &'a Value, ptr: &str) -> Option<&'a str> {
    o.pointer(ptr).and_then(Value::as_str)
}

/// The integer at a JSON pointer, or 0.
pub(crate) fn int_at(o: &Value, ptr: &str) -> i64 {
    opt_int(o, ptr).unwrap_or(0)
}

/// The integer at a JSON pointer, if present (a float is truncated, as a decoded int32 would be).
pub(crate) fn opt_int(o: &Value, ptr: &str) -> Option<i64> {
    let v = o.pointer(ptr)?;
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The boolean at a JSON pointer, or false.
pub(crate) fn bool_at(o: &Value, ptr: &str) -> bool {
    o.pointer(ptr).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at a JSON pointer, or an empty slice.
pub(crate) fn arr_at<'a>(o: &'a Value, ptr: &str) -> &'a [Value] {
    o.pointer(ptr).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The object (map) at a JSON pointer, if present.
pub(crate) fn map_at<'a>(o: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    o.pointer(ptr).and_then(Value::as_object)
}

/// The number of entries of the map at a JSON pointer.
pub(crate) fn map_len(o: &Value, ptr: &str) -> usize {
    map_at(o, ptr).map_or(0, Map::len)
}

/// Whether a field is present and not null.
pub(crate) fn has(o: &Value, ptr: &str) -> bool {
    o.pointer(ptr).is_some_and(|v| !v.is_null())
}

/// The `metadata.name` cell.
pub(crate) fn name(o: &Value) -> Value {
    json!(str_at(o, "/metadata/name"))
}

/// The age cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(o: &Value, now: SystemTime) -> Value {
    json!(translate_timestamp_since(opt_str(o, "/metadata/creationTimestamp"), now))
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn deleting(o: &Value) -> bool {
    has(o, "/metadata/deletionTimestamp")
}

/// Whether the condition of `type_` in the `conditions` array at `ptr` has status `True`.
pub(crate) fn condition_true(o: &Value, ptr: &str, type_: &str) -> bool {
    arr_at(o, ptr).iter().find(|c| str_at(c, "/type") == type_).is_some_and(|c| str_at(c, "/status") == "True")
}
