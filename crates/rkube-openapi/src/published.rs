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
        let hash = Sha512::digest(&bytes).iter().map(|b| format!("{b:02X}")).collect();
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
