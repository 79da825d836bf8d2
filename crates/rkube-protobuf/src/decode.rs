//! Protobuf message bytes → the JSON upstream writes, by walking the message table.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use crate::error::DecodeError;
use crate::special::{format_go_duration, format_rfc3339, normalize};
use crate::table::{self, Card, FieldDef, INLINE, MessageDef, OMIT_EMPTY, SKIP, Special, Ty};
use crate::wire::{Reader, WireValue};
use crate::{MAX_DEPTH, envelope};

/// Decodes one message of the table's type `index` into JSON.
pub(crate) fn decode_message(index: u16, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let def = table::message(index);
    if depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep { message: def.name });
    }
    match def.special {
        Special::None => decode_fields(def, bytes, depth).map(Value::Object),
        _ => decode_special(def, bytes, depth),
    }
}

/// All fields of a message, grouped by the table's field order; unknown field numbers are dropped,
/// as protobuf readers must.
fn collect<'a>(def: &MessageDef, bytes: &'a [u8]) -> Result<Vec<Vec<WireValue<'a>>>, DecodeError> {
    let mut per_field = vec![Vec::new(); def.fields.len()];
    let mut reader = Reader::new(bytes);
    while let Some((tag, value)) = reader.next_field().map_err(|(field, reason)| wire(def, field, reason))? {
        if let Ok(i) = def.fields.binary_search_by_key(&tag, |f| f.tag) {
            per_field[i].push(value);
        }
    }
    Ok(per_field)
}

fn wire(def: &MessageDef, field: u32, reason: crate::WireError) -> DecodeError {
    DecodeError::Wire { message: def.name, field, reason }
}

fn decode_fields(def: &MessageDef, bytes: &[u8], depth: usize) -> Result<Map<String, Value>, DecodeError> {
    let per_field = collect(def, bytes)?;
    let mut out = Map::new();
    for (f, values) in def.fields.iter().zip(&per_field) {
        if values.is_empty() || f.has(SKIP) {
            continue;
        }
        match field_value(def, f, values, depth)? {
            None => {}
            // Go's `json:",inline"` writes the embedded struct's keys into the parent object.
            Some(Value::Object(inner)) if f.has(INLINE) => out.extend(inner),
            Some(v) => {
                out.insert(f.json.to_string(), v);
            }
        }
    }
    Ok(out)
}

/// The JSON of one field from its occurrences on the wire; `None` when Go would leave it out.
fn field_value(
    def: &MessageDef,
    f: &FieldDef,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<Option<Value>, DecodeError> {
    let value = match (f.ty, f.card) {
        (Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_), _) => {
            let mut map = Map::new();
            for v in values {
                let (k, v) = map_entry(def, f, len(def, f, v)?, depth)?;
                map.insert(k, v);
            }
            Value::Object(map)
        }
        (Ty::Msg(i), Card::One) => {
            // A singular message seen twice is merged, and concatenating the bytes is exactly protobuf's merge.
            let bytes: Cow<'_, [u8]> = match values {
                [one] => Cow::Borrowed(len(def, f, one)?),
                many => Cow::Owned(many.iter().map(|v| len(def, f, v)).collect::<Result<Vec<_>, _>>()?.concat()),
            };
            decode_message(i, &bytes, depth + 1)?
        }
        (Ty::Msg(i), Card::Rep) => {
            let items = values.iter().map(|v| decode_message(i, len(def, f, v)?, depth + 1));
            Value::Array(items.collect::<Result<_, _>>()?)
        }
        (_, Card::One) => match values.last() {
            Some(v) => scalar(def, f, *v)?,
            None => return Ok(None),
        },
        (_, Card::Rep) => {
            let mut items = Vec::new();
            for v in values {
                match (v, f.ty) {
                    // Packed numbers: one length-delimited run of values (proto3's default; proto2 may use it).
                    (WireValue::Len(run), Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64) => unpack(def, f, run, &mut items)?,
                    _ => items.push(scalar(def, f, *v)?),
                }
            }
            Value::Array(items)
        }
    };
    // Repeated and map fields that are empty are left out; so are zero plain values and empty
    // named slices with omitempty.
    let omit = match &value {
        Value::Array(a) => a.is_empty() && (f.card == Card::Rep || f.has(OMIT_EMPTY)),
        Value::Object(o) => o.is_empty() && matches!(f.ty, Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_)),
        v => f.has(OMIT_EMPTY) && is_zero(v),
    };
    Ok((!omit).then_some(value))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

fn len<'a>(def: &MessageDef, f: &FieldDef, v: &WireValue<'a>) -> Result<&'a [u8], DecodeError> {
    match v {
        WireValue::Len(b) => Ok(b),
        other => Err(wire_type(def, f.tag, 2, other)),
    }
}

fn wire_type(def: &MessageDef, field: u32, expected: u8, found: &WireValue<'_>) -> DecodeError {
    DecodeError::WireType { message: def.name, field, expected, found: found.wire_type() }
}

fn scalar(def: &MessageDef, f: &FieldDef, v: WireValue<'_>) -> Result<Value, DecodeError> {
    Ok(match (f.ty, v) {
        // Go's JSON encoder replaces invalid UTF-8 with U+FFFD rather than failing; so does this.
        (Ty::Str, WireValue::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Ty::Bytes, WireValue::Len(b)) => Value::String(BASE64.encode(b)),
        (Ty::Bool, WireValue::Varint(n)) => Value::Bool(n != 0),
        // int32 is sign-extended to 64 bits on the wire; the low 32 bits are the value.
        (Ty::I32, WireValue::Varint(n)) => Value::from(n as i32),
        (Ty::I64, WireValue::Varint(n)) => Value::from(n as i64),
        (Ty::F64, WireValue::Fixed64(bits)) => {
            Value::Number(Number::from_f64(f64::from_bits(bits)).ok_or_else(|| DecodeError::Unrepresentable {
                message: def.name,
                what: format!("field {}: {}", f.tag, f64::from_bits(bits)),
            })?)
        }
        (ty, other) => return Err(wire_type(def, f.tag, expected_wire_type(ty), &other)),
    })
}

fn expected_wire_type(ty: Ty) -> u8 {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => 0,
        Ty::F64 => 1,
        _ => 2,
    }
}

fn unpack(def: &MessageDef, f: &FieldDef, run: &[u8], items: &mut Vec<Value>) -> Result<(), DecodeError> {
    let mut r = Reader::new(run);
    while !r.is_empty() {
        let v = if f.ty == Ty::F64 {
            WireValue::Fixed64(r.fixed64().map_err(|e| wire(def, f.tag, e))?)
        } else {
            WireValue::Varint(r.varint().map_err(|e| wire(def, f.tag, e))?)
        };
        items.push(scalar(def, f, v)?);
    }
    Ok(())
}

/// A map entry message: key = 1, value = 2; either may be absent and then is its zero value.
fn map_entry(def: &MessageDef, f: &FieldDef, bytes: &[u8], depth: usize) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut value: Option<&[u8]> = None;
    let mut r = Reader::new(bytes);
    while let Some((tag, v)) = r.next_field().map_err(|(_, e)| wire(def, f.tag, e))? {
        match (tag, v) {
            (1, WireValue::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
            (2, WireValue::Len(b)) => value = Some(b),
            (1 | 2, other) => return Err(wire_type(def, f.tag, 2, &other)),
            _ => {}
        }
    }
    let value = match f.ty {
        Ty::MapStr => Value::String(String::from_utf8_lossy(value.unwrap_or_default()).into_owned()),
        Ty::MapBytes => Value::String(BASE64.encode(value.unwrap_or_default())),
        Ty::MapMsg(i) => decode_message(i, value.unwrap_or_default(), depth + 1)?,
        _ => Value::Null,
    };
    Ok((key, value))
}

/// The last occurrence of each field number, for the hand-decoded special messages.
fn last_fields<'a>(def: &MessageDef, bytes: &'a [u8]) -> Result<[Option<WireValue<'a>>; 5], DecodeError> {
    let mut out = [None; 5];
    let mut r = Reader::new(bytes);
    while let Some((tag, v)) = r.next_field().map_err(|(field, e)| wire(def, field, e))? {
        if let Some(slot) = out.get_mut(tag as usize) {
            *slot = Some(v);
        }
    }
    Ok(out)
}

fn varint_field(def: &MessageDef, tag: u32, v: Option<WireValue<'_>>) -> Result<u64, DecodeError> {
    match v {
        None => Ok(0),
        Some(WireValue::Varint(n)) => Ok(n),
        Some(other) => Err(wire_type(def, tag, 0, &other)),
    }
}

fn bytes_field<'a>(def: &MessageDef, tag: u32, v: Option<WireValue<'a>>) -> Result<Option<&'a [u8]>, DecodeError> {
    match v {
        None => Ok(None),
        Some(WireValue::Len(b)) => Ok(Some(b)),
        Some(other) => Err(wire_type(def, tag, 2, &other)),
    }
}

fn decode_special(def: &MessageDef, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let unrepresentable = |what: String| DecodeError::Unrepresentable { message: def.name, what };
    let f = last_fields(def, bytes)?;
    Ok(match def.special {
        // Go's Time.Unmarshal reads an empty message as the zero time, which MarshalJSON writes as null;
        // it also drops the nanoseconds (JSON Time has whole seconds), so they are ignored here.
        Special::Time | Special::MicroTime if bytes.is_empty() => Value::Null,
        Special::Time | Special::MicroTime => {
            let secs = varint_field(def, 1, f[1])? as i64;
            let nanos = i64::from(varint_field(def, 2, f[2])? as i32);
            let text = if def.special == Special::Time {
                format_rfc3339(secs, None)
            } else {
                let (secs, nanos) = normalize(secs, nanos);
                format_rfc3339(secs, Some(nanos / 1000))
            };
            Value::String(text.ok_or_else(|| unrepresentable(format!("time {secs}s since 1970")))?)
        }
        Special::Duration => Value::String(format_go_duration(varint_field(def, 1, f[1])? as i64)),
        // The zero Quantity is written "0". Upstream also canonicalises the string ("1000m" → "1");
        // that is left to whoever canonicalises JSON input, so both paths agree.
        Special::Quantity => match bytes_field(def, 1, f[1])? {
            Some(s) if !s.is_empty() => Value::String(String::from_utf8_lossy(s).into_owned()),
            _ => Value::String("0".to_string()),
        },
        Special::IntOrString => match varint_field(def, 1, f[1])? {
            0 => Value::from(varint_field(def, 2, f[2])? as i32),
            1 => Value::String(String::from_utf8_lossy(bytes_field(def, 3, f[3])?.unwrap_or_default()).into_owned()),
            t => return Err(unrepresentable(format!("IntOrString type {t}"))),
        },
        Special::RawExtension | Special::RawJson => embedded(def, 1, bytes_field(def, 1, f[1])?, depth)?,
        Special::Unknown => embedded(def, 2, bytes_field(def, 2, f[2])?, depth)?,
        Special::GroupVersion => {
            let text = |tag: usize| {
                bytes_field(def, tag as u32, f[tag])
                    .map(|b| String::from_utf8_lossy(b.unwrap_or_default()).into_owned())
            };
            let (group, version) = (text(1)?, text(2)?);
            Value::String(if group.is_empty() { version } else { format!("{group}/{version}") })
        }
        Special::Items => {
            let items = collect(def, bytes)?.into_iter().next().unwrap_or_default();
            let items = items
                .iter()
                .map(|v| len(def, &def.fields[0], v).map(|b| Value::String(String::from_utf8_lossy(b).into_owned())));
            Value::Array(items.collect::<Result<_, _>>()?)
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => schema_or(def, bytes, depth)?,
        Special::None => Value::Object(decode_fields(def, bytes, depth)?),
    })
}

/// apiextensions' `JSONSchemaPropsOr{Array,Bool,StringArray}`, as their MarshalJSON methods write them.
fn schema_or(def: &MessageDef, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let m = decode_fields(def, bytes, depth)?;
    let get = |tag: u32| def.field(tag).and_then(|f| m.get(f.json)).cloned();
    Ok(match def.special {
        // JSONSchemas (2) wins when non-empty, else the schema (1), else null.
        Special::SchemaOrArray => get(2).or_else(|| get(1)).unwrap_or(Value::Null),
        // The schema (2) if set, else the bool (1).
        Special::SchemaOrBool => get(2).or_else(|| get(1)).unwrap_or(Value::Bool(false)),
        // The string list (2) when non-empty, else the schema (1), else null.
        _ => get(2).or_else(|| get(1)).unwrap_or(Value::Null),
    })
}

/// Raw bytes that are JSON text, or (from protobuf clients) a nested `k8s\0` protobuf object.
fn embedded(def: &MessageDef, tag: u32, raw: Option<&[u8]>, depth: usize) -> Result<Value, DecodeError> {
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(raw) if raw.starts_with(&envelope::MAGIC) => envelope::decode_at(raw, depth + 1),
        Some(raw) => serde_json::from_slice(raw).map_err(|source| DecodeError::EmbeddedJson {
            message: def.name,
            field: tag,
            source,
        }),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
