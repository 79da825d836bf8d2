//! The `k8s\0` + `runtime.Unknown` envelope around every Kubernetes protobuf object, and content types.

use serde_json::Value;

use crate::decode::decode_message;
use crate::error::DecodeError;
use crate::table;
use crate::wire::{Reader, WireValue};

/// The 4 bytes before every protobuf-encoded object (upstream's `protobuf.serializer` prefix).
pub(crate) const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What the envelope says.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

/// The envelope's own messages are read by hand: they are the frame around the table's messages.
const ENVELOPE: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

fn read_unknown(bytes: &[u8]) -> Result<Unknown<'_>, DecodeError> {
    let mut out =
        Unknown { api_version: String::new(), kind: String::new(), raw: &[], content_encoding: String::new() };
    for_each_len(ENVELOPE, bytes, |tag, b| {
        match tag {
            1 => {
                for_each_len(TYPE_META, b, |tag, s| {
                    match tag {
                        1 => out.api_version = String::from_utf8_lossy(s).into_owned(),
                        2 => out.kind = String::from_utf8_lossy(s).into_owned(),
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            2 => out.raw = b,
            3 => out.content_encoding = String::from_utf8_lossy(b).into_owned(),
            // 4, contentType, is "" or the protobuf type for objects the serializer writes.
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with each length-delimited field; every field of these two messages is one.
fn for_each_len<'a>(
    message: &'static str,
    bytes: &'a [u8],
    mut f: impl FnMut(u32, &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(bytes);
    while let Some((tag, v)) = r.next_field().map_err(|(field, reason)| DecodeError::Wire { message, field, reason })? {
        match v {
            WireValue::Len(b) => f(tag, b)?,
            other if (1..=4).contains(&tag) => {
                return Err(DecodeError::WireType { message, field: tag, expected: 2, found: other.wire_type() });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes an enveloped object at a nesting depth (non-zero for objects inside a RawExtension).
pub(crate) fn decode_at(body: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let bytes = body.strip_prefix(&MAGIC).ok_or(DecodeError::MissingMagic)?;
    let env = read_unknown(bytes)?;
    if !env.content_encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(env.content_encoding));
    }
    if env.api_version.is_empty() {
        return Err(DecodeError::MissingTypeMeta("apiVersion"));
    }
    if env.kind.is_empty() {
        return Err(DecodeError::MissingTypeMeta("kind"));
    }
    let index = table::message_for_kind(&env.api_version, &env.kind)
        .ok_or_else(|| DecodeError::UnknownKind { kind: env.kind.clone(), api_version: env.api_version.clone() })?;
    let mut object = match decode_message(index, env.raw, depth)? {
        Value::Object(o) => o,
        // Every kind is a plain message (they embed TypeMeta), so this cannot happen with the generated table.
        other => return Ok(other),
    };
    // The object's bytes carry no TypeMeta: the envelope's is the object's apiVersion and kind.
    object.insert("apiVersion".to_string(), Value::String(env.api_version));
    object.insert("kind".to_string(), Value::String(env.kind));
    Ok(Value::Object(object))
}

/// Whether a Content-Type (or Accept entry) names Kubernetes protobuf, whatever its parameters.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(CONTENT_TYPE)
}
