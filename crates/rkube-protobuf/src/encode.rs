//! JSON → protobuf, the inverse of `decode.rs`, writing bytes as upstream's Go marshaller would.
//!
//! Go marshals every plain (non-pointer) field even when zero, in field-number order, with map keys
//! sorted; so does this (the table's `VALUE` flag), which makes a decoded kubectl body re-encode to
//! the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::error::EncodeError;
use crate::special::{parse_go_duration, parse_rfc3339};
use crate::table::{self, Card, FieldDef, INLINE, MessageDef, SKIP, Special, Ty, VALUE};
use crate::wire::{put_key, put_len, put_varint};
use crate::{MAX_DEPTH, envelope};

/// Encodes an object with `apiVersion` and `kind` as `k8s\0` + `runtime.Unknown`.
pub(crate) fn encode_envelope(object: &Value, depth: usize) -> Result<Vec<u8>, EncodeError> {
    let text = |key: &'static str| object.get(key).and_then(Value::as_str).ok_or(EncodeError::MissingTypeMeta(key));
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    let index = table::message_for_kind(api_version, kind)
        .ok_or_else(|| EncodeError::UnknownKind { kind: kind.to_string(), api_version: api_version.to_string() })?;
    let mut fields = object.as_object().cloned().unwrap_or_default();
    // TypeMeta travels in the envelope; the message has no field for it.
    fields.remove("apiVersion");
    fields.remove("kind");
    let mut raw = Vec::new();
    encode_object(table::message(index), &fields, depth, &mut raw)?;

    let mut type_meta = Vec::new();
    put_len(&mut type_meta, 1, api_version.as_bytes());
    put_len(&mut type_meta, 2, kind.as_bytes());
    let mut out = envelope::MAGIC.to_vec();
    put_len(&mut out, 1, &type_meta);
    put_len(&mut out, 2, &raw);
    // contentEncoding and contentType: plain Go strings, written empty as upstream does.
    put_len(&mut out, 3, b"");
    put_len(&mut out, 4, b"");
    Ok(out)
}

/// Encodes one message of the table's type `index`; `null` is the zero value.
fn encode_message(index: u16, value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let def = table::message(index);
    if depth >= MAX_DEPTH {
        return Err(EncodeError::TooDeep { message: def.name });
    }
    match (def.special, value) {
        (Special::None, Value::Object(map)) => encode_object(def, map, depth, out),
        (Special::None, Value::Null) => encode_object(def, &Map::new(), depth, out),
        (Special::None, _) => Err(wrong(def, "", "an object")),
        _ => encode_special(def, value, depth, out),
    }
}

fn wrong(def: &MessageDef, key: &str, expected: &'static str) -> EncodeError {
    EncodeError::WrongType { message: def.name, key: key.to_string(), expected }
}

fn bad(def: &MessageDef, key: &str, what: impl Into<String>) -> EncodeError {
    EncodeError::BadValue { message: def.name, key: key.to_string(), what: what.into() }
}

/// Every JSON key a message takes, including those of its inline members.
fn accepts(def: &MessageDef, key: &str) -> bool {
    def.fields.iter().any(|f| match f.ty {
        Ty::Msg(i) if f.has(INLINE) => accepts(table::message(i), key),
        _ => !f.has(SKIP) && f.json == key,
    })
}

fn encode_object(
    def: &MessageDef,
    map: &Map<String, Value>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // Protobuf has nowhere to put a key the message lacks, and dropping it silently would lose data.
    if let Some(key) = map.keys().find(|k| !accepts(def, k)) {
        return Err(EncodeError::UnknownField { message: def.name, key: key.clone() });
    }
    for f in def.fields {
        if f.has(SKIP) {
            continue;
        }
        if f.has(INLINE) {
            if let Ty::Msg(i) = f.ty {
                let mut inner = Vec::new();
                encode_object(table::message(i), &inline_keys(table::message(i), map), depth + 1, &mut inner)?;
                put_len(out, f.tag, &inner);
            }
            continue;
        }
        let value = map.get(f.json).filter(|v| !v.is_null());
        encode_field(def, f, value, depth, out)?;
    }
    Ok(())
}

/// The parent's keys that belong to an inline member.
fn inline_keys(def: &MessageDef, map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().filter(|(k, _)| accepts(def, k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn encode_field(
    def: &MessageDef,
    f: &FieldDef,
    value: Option<&Value>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match (f.ty, f.card, value) {
        (Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_), _, Some(Value::Object(map))) => {
            // serde_json's map is ordered by key, as Go's marshaller sorts map keys.
            for (k, v) in map {
                let mut entry = Vec::new();
                put_len(&mut entry, 1, k.as_bytes());
                match f.ty {
                    Ty::MapMsg(i) => {
                        let mut inner = Vec::new();
                        encode_message(i, v, depth + 1, &mut inner)?;
                        put_len(&mut entry, 2, &inner);
                    }
                    ty => put_scalar(def, f, ty, 2, v, &mut entry)?,
                }
                put_len(out, f.tag, &entry);
            }
        }
        (Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_), _, Some(_)) => return Err(wrong(def, f.json, "an object")),
        (_, Card::Rep, Some(Value::Array(items))) => {
            for item in items {
                match f.ty {
                    Ty::Msg(i) => {
                        let mut inner = Vec::new();
                        encode_message(i, item, depth + 1, &mut inner)?;
                        put_len(out, f.tag, &inner);
                    }
                    ty => put_scalar(def, f, ty, f.tag, item, out)?,
                }
            }
        }
        (_, Card::Rep, Some(_)) => return Err(wrong(def, f.json, "an array")),
        (Ty::Msg(i), Card::One, Some(v)) => {
            let mut inner = Vec::new();
            encode_message(i, v, depth + 1, &mut inner)?;
            put_len(out, f.tag, &inner);
        }
        // Absent plain values are Go zero values, which Go's marshaller writes anyway.
        (Ty::Msg(i), Card::One, None) if f.has(VALUE) => {
            let mut inner = Vec::new();
            encode_message(i, &Value::Null, depth + 1, &mut inner)?;
            put_len(out, f.tag, &inner);
        }
        (ty, Card::One, Some(v)) => put_scalar(def, f, ty, f.tag, v, out)?,
        (ty @ (Ty::Str | Ty::Bytes | Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64), Card::One, None) if f.has(VALUE) => {
            put_zero(ty, f.tag, out);
        }
        _ => {}
    }
    Ok(())
}

fn put_zero(ty: Ty, tag: u32, out: &mut Vec<u8>) {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => {
            put_key(out, tag, 0);
            put_varint(out, 0);
        }
        Ty::F64 => {
            put_key(out, tag, 1);
            out.extend_from_slice(&0f64.to_bits().to_le_bytes());
        }
        _ => put_len(out, tag, b""),
    }
}

fn put_scalar(
    def: &MessageDef,
    f: &FieldDef,
    ty: Ty,
    tag: u32,
    v: &Value,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let key = f.json;
    match ty {
        Ty::Str | Ty::MapStr => put_len(out, tag, v.as_str().ok_or_else(|| wrong(def, key, "a string"))?.as_bytes()),
        Ty::Bytes | Ty::MapBytes => {
            let text = v.as_str().ok_or_else(|| wrong(def, key, "a base64 string"))?;
            let bytes = BASE64.decode(text).map_err(|e| bad(def, key, format!("bad base64: {e}")))?;
            put_len(out, tag, &bytes);
        }
        Ty::Bool => {
            put_key(out, tag, 0);
            put_varint(out, u64::from(v.as_bool().ok_or_else(|| wrong(def, key, "a boolean"))?));
        }
        Ty::I32 => {
            let n = v.as_i64().ok_or_else(|| wrong(def, key, "an integer"))?;
            let n = i32::try_from(n).map_err(|_| bad(def, key, format!("{n} is out of int32 range")))?;
            put_key(out, tag, 0);
            // Negative int32s are sign-extended to 64 bits on the wire.
            put_varint(out, i64::from(n) as u64);
        }
        Ty::I64 => {
            put_key(out, tag, 0);
            put_varint(out, v.as_i64().ok_or_else(|| wrong(def, key, "an integer"))? as u64);
        }
        Ty::F64 => {
            put_key(out, tag, 1);
            out.extend_from_slice(&v.as_f64().ok_or_else(|| wrong(def, key, "a number"))?.to_bits().to_le_bytes());
        }
        Ty::Msg(_) | Ty::MapMsg(_) => return Err(wrong(def, key, "a message")),
    }
    Ok(())
}

fn encode_special(def: &MessageDef, value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let text = || value.as_str().ok_or_else(|| wrong(def, "", "a string"));
    match def.special {
        // The zero time is an empty message (Go's Time.Size is 0 for it).
        Special::Time | Special::MicroTime if value.is_null() => {}
        Special::Time | Special::MicroTime => {
            let (secs, nanos) = parse_rfc3339(text()?).ok_or_else(|| bad(def, "", "not an RFC 3339 time"))?;
            // Time's protobuf form drops the nanoseconds (Go's ProtoTime); MicroTime keeps microseconds.
            let nanos = if def.special == Special::Time { 0 } else { nanos / 1000 * 1000 };
            put_key(out, 1, 0);
            put_varint(out, secs as u64);
            put_key(out, 2, 0);
            put_varint(out, u64::from(nanos));
        }
        Special::Duration => {
            let nanos = if value.is_null() {
                0
            } else {
                parse_go_duration(text()?).ok_or_else(|| bad(def, "", "not a duration"))?
            };
            put_key(out, 1, 0);
            put_varint(out, nanos as u64);
        }
        Special::Quantity => {
            let q = if value.is_null() { "0".to_string() } else { quantity_text(def, value)? };
            put_len(out, 1, q.as_bytes());
        }
        Special::IntOrString => {
            let (kind, int, text) = match value {
                Value::Number(n) => {
                    let n =
                        n.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| bad(def, "", "not an int32"))?;
                    (0, n, "")
                }
                Value::String(s) => (1, 0, s.as_str()),
                Value::Null => (0, 0, ""),
                _ => return Err(wrong(def, "", "a number or a string")),
            };
            put_key(out, 1, 0);
            put_varint(out, kind);
            put_key(out, 2, 0);
            put_varint(out, i64::from(int) as u64);
            put_len(out, 3, text.as_bytes());
        }
        // Raw JSON; nil (null) is no field at all.
        Special::RawExtension | Special::RawJson | Special::Unknown if value.is_null() => {}
        Special::RawExtension | Special::RawJson | Special::Unknown => {
            let tag = if def.special == Special::Unknown { 2 } else { 1 };
            let raw = serde_json::to_vec(value).map_err(|e| bad(def, "", e.to_string()))?;
            put_len(out, tag, &raw);
        }
        Special::GroupVersion => {
            let gv = text()?;
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            put_len(out, 1, group.as_bytes());
            put_len(out, 2, version.as_bytes());
        }
        Special::Items => {
            for item in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                put_len(out, 1, item.as_str().ok_or_else(|| wrong(def, "", "an array of strings"))?.as_bytes());
            }
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            schema_or(def, value, depth, out)?
        }
        Special::None => encode_message_fields(def, value, depth, out)?,
    }
    Ok(())
}

fn encode_message_fields(def: &MessageDef, value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let map = value.as_object().cloned().unwrap_or_default();
    encode_object(def, &map, depth, out)
}

fn quantity_text(def: &MessageDef, value: &Value) -> Result<String, EncodeError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        // Go's Quantity.UnmarshalJSON accepts a bare number too.
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(wrong(def, "", "a quantity string")),
    }
}

/// apiextensions' schema unions, as their UnmarshalJSON methods fill them and Go marshals them.
fn schema_or(def: &MessageDef, value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let schema_index = |tag: u32| match def.field(tag).map(|f| f.ty) {
        Some(Ty::Msg(i)) => Ok(i),
        _ => Err(bad(def, "", "table lacks the schema field")),
    };
    let put_schema = |tag: u32, v: &Value, out: &mut Vec<u8>| -> Result<(), EncodeError> {
        let mut inner = Vec::new();
        encode_message(schema_index(tag)?, v, depth + 1, &mut inner)?;
        put_len(out, tag, &inner);
        Ok(())
    };
    match (def.special, value) {
        (Special::SchemaOrArray, Value::Object(_)) => put_schema(1, value, out)?,
        (Special::SchemaOrArray, Value::Array(items)) => items.iter().try_for_each(|v| put_schema(2, v, out))?,
        (Special::SchemaOrBool, Value::Bool(b)) => {
            put_key(out, 1, 0);
            put_varint(out, u64::from(*b));
        }
        (Special::SchemaOrBool, Value::Object(_)) => {
            // A schema means "allowed, with this schema".
            put_key(out, 1, 0);
            put_varint(out, 1);
            put_schema(2, value, out)?;
        }
        (Special::SchemaOrStringArray, Value::Object(_)) => put_schema(1, value, out)?,
        (Special::SchemaOrStringArray, Value::Array(items)) => {
            for item in items {
                put_len(out, 2, item.as_str().ok_or_else(|| wrong(def, "", "an array of strings"))?.as_bytes());
            }
        }
        (_, Value::Null) => {}
        _ => return Err(wrong(def, "", "a schema, or an array or bool per its type")),
    }
    Ok(())
}
