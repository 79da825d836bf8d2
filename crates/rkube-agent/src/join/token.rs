//! Join tokens in k3s's secure format, `K10<sha256 of the CA bundle, hex>::<id>.<secret>`: the hash pins the
//! cluster CA the agent will trust, the bootstrap token (kubeadm's `[a-z0-9]{6}.[a-z0-9]{16}`) authenticates the
//! agent until it has its own certificate.

use sha2::{Digest, Sha256};

use super::JoinError;

/// The form a join token must have, for error messages.
pub const EXPECTED_FORM: &str =
    "K10<64 hex digits: sha256 of the cluster CA>::<6 characters [a-z0-9]>.<16 characters [a-z0-9]>";

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    ca_hash: String,
    id: String,
    secret: String,
}

impl std::fmt::Debug for JoinToken {
    // The secret half is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken").field("ca_hash", &self.ca_hash).field("id", &self.id).finish_non_exhaustive()
    }
}

fn bootstrap_part(text: &str) -> Option<(String, String)> {
    let (id, secret) = text.split_once('.')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (ok(id, 6) && ok(secret, 16)).then(|| (id.to_owned(), secret.to_owned()))
}

/// The sha256 of a CA bundle as the token pins it (lower-case hex), k3s's rule: over the PEM bytes as served.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    Sha256::digest(ca_pem).iter().map(|b| format!("{b:02x}")).collect()
}

impl JoinToken {
    /// Parses `K10<hash>::<id>.<secret>`. A bare `<id>.<secret>` is refused: it pins no CA, so the agent could
    /// not tell the real server from an impostor.
    pub fn parse(text: &str) -> Result<JoinToken, JoinError> {
        let text = text.trim();
        let bad = |why: &str| JoinError::BadToken { why: why.to_owned() };
        if bootstrap_part(text).is_some() {
            return Err(bad(
                "it is a bare bootstrap token and pins no CA; use the full token `rkube token create` prints (or \
                 <data-dir>/server/token on a server started with --token)",
            ));
        }
        let rest = text.strip_prefix("K10").ok_or_else(|| bad("it does not start with K10"))?;
        let (hash, credential) = rest.split_once("::").ok_or_else(|| bad("there is no `::` after the CA hash"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the CA hash is not 64 hexadecimal digits"));
        }
        let (id, secret) = bootstrap_part(credential)
            .ok_or_else(|| bad("the part after `::` is not a bootstrap token <id>.<secret>"))?;
        Ok(JoinToken { ca_hash: hash.to_ascii_lowercase(), id, secret })
    }

    /// A token pinning `ca_pem` for the bootstrap token `<id>.<secret>`.
    pub fn new(ca_pem: &[u8], bootstrap: &str) -> Result<JoinToken, JoinError> {
        let (id, secret) = bootstrap_part(bootstrap)
            .ok_or_else(|| JoinError::BadToken { why: "it is not a bootstrap token <id>.<secret>".to_owned() })?;
        Ok(JoinToken { ca_hash: ca_hash(ca_pem), id, secret })
    }

    /// The pinned CA hash.
    pub fn ca_hash(&self) -> &str {
        &self.ca_hash
    }

    /// The public token id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bearer token, `<id>.<secret>`.
    pub fn bootstrap_token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The full token text, `K10<hash>::<id>.<secret>`.
    pub fn to_text(&self) -> String {
        format!("K10{}::{}.{}", self.ca_hash, self.id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip() {
        let text = format!("K10{HASH}::abcdef.0123456789abcdef");
        let t = JoinToken::parse(&format!(" {text}\n")).expect("parse");
        assert_eq!(t.ca_hash(), HASH);
        assert_eq!(t.bootstrap_token(), "abcdef.0123456789abcdef");
        assert_eq!(t.to_text(), text);
        assert!(!format!("{t:?}").contains("0123456789abcdef."));
        let upper = format!("K10{}::abcdef.0123456789abcdef", HASH.to_uppercase());
        assert_eq!(JoinToken::parse(&upper).expect("upper").ca_hash(), HASH);
    }

    #[test]
    fn refusals_say_why() {
        let why = |t: &str| match JoinToken::parse(t) {
            Err(JoinError::BadToken { why }) => why,
            other => panic!("{t}: {other:?}"),
        };
        assert!(why("abcdef.0123456789abcdef").contains("pins no CA"));
        assert!(why("garbage").contains("K10"));
        assert!(why(&format!("K10{HASH}abcdef.0123456789abcdef")).contains("::"));
        assert!(why("K10abc::abcdef.0123456789abcdef").contains("64 hexadecimal"));
        assert!(why(&format!("K10{HASH}::ABCDEF.0123456789abcdef")).contains("<id>.<secret>"));
        assert!(why(&format!("K10{HASH}::server:password")).contains("<id>.<secret>"));
        let msg = JoinError::BadToken { why: "x".into() }.to_string();
        assert!(msg.contains(EXPECTED_FORM), "{msg}");
    }

    #[test]
    fn hash_is_sha256_hex_of_the_pem() {
        assert_eq!(ca_hash(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let t = JoinToken::new(b"abc", "abcdef.0123456789abcdef").expect("new");
        assert!(t.to_text().starts_with("K10ba7816bf"));
    }
}
