//! `continue` tokens in upstream's format: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`,
//! where `start` is the next key relative to the listed prefix, so tokens stay valid across prefix changes.

use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: i64,
    start: String,
}

/// A `continue` value that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("continue key is not valid: {0}")]
pub struct InvalidToken(String);

/// Encodes the token for the page after `last_key` (a key under `prefix`), read at `revision`.
pub fn encode(revision: i64, prefix: &str, last_key: &str) -> String {
    let relative = last_key.strip_prefix(prefix).unwrap_or(last_key);
    let token = Token { v: "meta.k8s.io/v1".to_owned(), rv: revision, start: format!("{relative}\u{0}") };
    // Serializing a struct of strings and an integer cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// Decodes a token into (revision, first key to read) for `prefix`.
pub fn decode(token: &str, prefix: &str) -> Result<(i64, String), InvalidToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|e| InvalidToken(format!("not base64: {e}")))?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|e| InvalidToken(format!("not a continue token: {e}")))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(InvalidToken(format!("unknown version {:?}", t.v)));
    }
    if t.rv <= 0 {
        return Err(InvalidToken("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".to_owned()));
    }
    if t.start.contains("..") || t.start.starts_with('/') {
        return Err(InvalidToken("the start key may not contain path traversal".to_owned()));
    }
    Ok((t.rv, format!("{prefix}{}", t.start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_relative_to_the_prefix() {
        let t = encode(42, "/registry/configmaps/default/", "/registry/configmaps/default/cm-9");
        let (rv, start) = decode(&t, "/registry/configmaps/default/").expect("decode");
        assert_eq!(rv, 42);
        assert_eq!(start, "/registry/configmaps/default/cm-9\u{0}");
        assert!(decode("!!!", "/p/").is_err());
        assert!(
            decode(
                &base64::engine::general_purpose::URL_SAFE
                    .encode(b"{\"v\":\"meta.k8s.io/v1\",\"rv\":1,\"start\":\"../x\"}"),
                "/p/"
            )
            .is_err()
        );
    }
}
