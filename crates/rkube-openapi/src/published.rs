//! A finished document: its JSON value, its serialized bytes and the hash that names this version of it.

use serde_json::Value;
use sha2::{Digest, Sha512};

/// One OpenAPI document ready to serve: the value, the bytes to send and their hash.
///
/// The hash is upstream's: the upper-case hex SHA-512 of the bytes. It is the `hash` query parameter of
/// the v3 index's `serverRelativeURL` (clients cache a document under that URL for good) and, quoted, the
/// `ETag` of the response.
#[derive(Clone)]
pub struct Published {
    value: Value,
    bytes: Vec<u8>,
    hash: String,
}

// Documents are megabytes: debug output names them by size and hash instead.
impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").field("bytes", &self.bytes.len()).field("hash", &self.hash).finish()
    }
}

impl Published {
    /// Serializes a document and hashes the bytes.
    pub fn new(value: Value) -> Self {
        // Serializing a `Value` cannot fail: its map keys are strings.
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        let hash = hash(&bytes);
        Self { value, bytes, hash }
    }

    /// The document.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The document serialized as compact JSON.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Upper-case hex SHA-512 of [`Published::bytes`].
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The `ETag` header value: the hash, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }
}

/// Upstream's document hash: upper-case hex SHA-512.
fn hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes).iter().map(|b| format!("{b:02X}")).collect()
}

/// The Swagger 2.0 document as the gnostic protobuf `openapi.v2.Document` kubectl asks for (`GET
/// /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), with its hash.
///
/// Serve it with [`V2Protobuf::CONTENT_TYPE`] and `Vary: Accept`. Upstream reuses the JSON document's
/// `ETag` for it (the `Vary` header tells the two apart); this one hashes its own bytes, so a cache that
/// ignores `Vary` cannot revalidate one form with the other's tag.
#[derive(Clone)]
pub struct V2Protobuf {
    bytes: Vec<u8>,
    hash: String,
}

// Megabytes of bytes: debug output names them by size and hash instead.
impl std::fmt::Debug for V2Protobuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V2Protobuf").field("bytes", &self.bytes.len()).field("hash", &self.hash).finish()
    }
}

impl V2Protobuf {
    /// The `Content-Type` upstream answers protobuf requests for `/openapi/v2` with, whichever of the
    /// two protobuf media types was asked for (kube-openapi's handler; the `@v1.0` spelling kubectl sends
    /// is the deprecated one).
    pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

    /// Encodes a Swagger 2.0 document (such as [`Published::value`] of the v2 document) and hashes it.
    pub fn encode(swagger: &Value) -> Self {
        let bytes = crate::v2_proto::encode(swagger);
        let hash = hash(&bytes);
        Self { bytes, hash }
    }

    /// The protobuf bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Upper-case hex SHA-512 of [`V2Protobuf::bytes`].
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The `ETag` header value: the hash, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_follows_content() {
        let a = Published::new(serde_json::json!({"a": 1}));
        let b = Published::new(serde_json::json!({"a": 2}));
        assert_eq!(a.bytes(), br#"{"a":1}"#);
        assert_eq!(a.hash().len(), 128);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.etag(), format!("\"{}\"", a.hash()));
    }
}
