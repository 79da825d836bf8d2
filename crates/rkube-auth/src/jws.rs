//! Compact JWS (RFC 7515) signed and verified with the service-account key, on aws-lc-rs directly.
//!
//! Hand-rolled on purpose: the format is three base64url parts, and every cryptographic step is
//! aws-lc-rs's (the project's one provider). A JWT crate would add a second PEM/ASN.1 parser and would
//! want the system clock, while upstream's checks need a caller-given `now` and its own messages.
//! Algorithm confusion is impossible by construction: each key verifies only its own algorithm, so
//! `none` and `HS256` tokens never verify.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};

use crate::error::{KeyError, VerifyError};

/// The JWS algorithm a service-account key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: RSA keys (what kubeadm, k3s and rkube generate).
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::RS256 => &RSA_PKCS1_2048_8192_SHA256,
            Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &ECDSA_P384_SHA384_FIXED,
        }
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs tokens, with its public half for verifying them.
pub(crate) struct SigningKey {
    signer: Signer,
    public: VerifyingKey,
}

impl SigningKey {
    /// Loads a PEM private key: PKCS#8 (`PRIVATE KEY`, as rkube writes), PKCS#1 (`RSA PRIVATE KEY`) or
    /// SEC1 (`EC PRIVATE KEY`), as upstream's `--service-account-signing-key-file` accepts.
    pub(crate) fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|source| KeyError::NoPem { expected: "private key", source })?;
        let (signer, alg) = match &der {
            PrivateKeyDer::Pkcs1(k) => {
                (Signer::Rsa(rsa_key(RsaKeyPair::from_der(k.secret_pkcs1_der()))?), Algorithm::RS256)
            }
            PrivateKeyDer::Pkcs8(k) => match RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()) {
                Ok(pair) => (Signer::Rsa(pair), Algorithm::RS256),
                Err(_) => ec_key(k.secret_pkcs8_der())?,
            },
            PrivateKeyDer::Sec1(k) => ec_key(k.secret_sec1_der())?,
            _ => return Err(KeyError::Unsupported("an unknown private key format".into())),
        };
        let spki = match &signer {
            Signer::Rsa(pair) => pair.public_key().as_der(),
            Signer::Ec(pair) => pair.public_key().as_der(),
        }
        .map_err(KeyError::Encode)?;
        let public = VerifyingKey::from_spki(spki.as_ref(), alg)?;
        Ok(SigningKey { signer, public })
    }

    /// The verifying half.
    pub(crate) fn public(&self) -> &VerifyingKey {
        &self.public
    }

    /// The compact serialization of `payload` signed with this key, header `{"alg":..,"kid":..}` as go-jose writes.
    pub(crate) fn sign(&self, payload: &[u8]) -> Result<String, aws_lc_rs::error::Unspecified> {
        let header = Header { alg: self.public.alg.name().to_owned(), kid: Some(self.public.kid.clone()), crit: None };
        let header = serde_json::to_vec(&header).map_err(|_| aws_lc_rs::error::Unspecified)?;
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig)?;
                sig
            }
            Signer::Ec(pair) => pair.sign(&rng, out.as_bytes())?.as_ref().to_vec(),
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }
}

fn rsa_key(r: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>) -> Result<RsaKeyPair, KeyError> {
    r.map_err(|e| KeyError::Unsupported(format!("the RSA key is rejected ({e})")))
}

/// An ECDSA key on P-256 or P-384, from PKCS#8 or SEC1 DER.
fn ec_key(der: &[u8]) -> Result<(Signer, Algorithm), KeyError> {
    let curves: [(&'static EcdsaSigningAlgorithm, Algorithm); 2] =
        [(&ECDSA_P256_SHA256_FIXED_SIGNING, Algorithm::ES256), (&ECDSA_P384_SHA384_FIXED_SIGNING, Algorithm::ES384)];
    for (signing, alg) in curves {
        if let Ok(pair) = EcdsaKeyPair::from_private_key_der(signing, der) {
            return Ok((Signer::Ec(pair), alg));
        }
    }
    Err(KeyError::Unsupported("neither RSA nor ECDSA P-256/P-384".into()))
}

/// A public key that verifies tokens, with the key id upstream derives for it.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    alg: Algorithm,
    kid: String,
    key: Arc<ParsedPublicKey>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Loads a PEM `PUBLIC KEY`, or the public half of a PEM private key (upstream's
    /// `--service-account-key-file` accepts both).
    pub(crate) fn from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
        match SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes()) {
            Ok(spki) => VerifyingKey::from_spki_any(spki.as_ref()),
            Err(_) => Ok(SigningKey::from_pem(pem)?.public),
        }
    }

    /// A DER SubjectPublicKeyInfo of an RSA, P-256 or P-384 key.
    pub(crate) fn from_spki_any(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        [Algorithm::RS256, Algorithm::ES256, Algorithm::ES384]
            .into_iter()
            .find_map(|alg| VerifyingKey::from_spki(der, alg).ok())
            .ok_or_else(|| KeyError::Unsupported("the public key is neither RSA nor ECDSA P-256/P-384".into()))
    }

    fn from_spki(der: &[u8], alg: Algorithm) -> Result<VerifyingKey, KeyError> {
        let key = ParsedPublicKey::new(alg.verification(), der)
            .map_err(|e| KeyError::Unsupported(format!("the public key is rejected ({e})")))?;
        // The kid hashes the canonical SubjectPublicKeyInfo, whatever form the key came in.
        let spki: PublicKeyX509Der<'static> = key.as_der().map_err(KeyError::Encode)?;
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, spki.as_ref()));
        Ok(VerifyingKey { alg, kid, key: Arc::new(key) })
    }

    /// The algorithm this key verifies.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Upstream's key id: base64url(SHA-256(DER SubjectPublicKeyInfo)), unpadded.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The DER SubjectPublicKeyInfo.
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        self.key.as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    // Present only to refuse tokens that demand extensions we do not implement (RFC 7515 §4.1.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// A parsed, not yet verified, compact JWS.
pub(crate) struct Unverified<'a> {
    header: Header,
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The decoded payload bytes (JSON).
    pub(crate) payload: Vec<u8>,
}

/// Splits and decodes a compact JWS; any structural problem means "not a JWT".
pub(crate) fn parse(token: &str) -> Result<Unverified<'_>, VerifyError> {
    let malformed = |what: &str| VerifyError::Malformed(what.to_owned());
    // A JSON serialization (`{...}`) is never ours, as upstream's issuer pre-check says.
    if token.trim_start().starts_with('{') {
        return Err(malformed("JSON serialization"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("want three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD.decode(h).map_err(|_| malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| malformed("header is not a JWS header"))?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| malformed("payload is not base64url"))?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed("signature is not base64url"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Unverified { header, signing_input, signature, payload })
}

impl Unverified<'_> {
    /// Verifies the signature with the key the `kid` names, or with every key when there is no `kid`
    /// (upstream's lookup): `UnknownKey` when the kid names none of ours, `BadSignature` when no
    /// candidate verifies.
    pub(crate) fn verify(&self, keys: &[VerifyingKey]) -> Result<(), VerifyError> {
        let kid = self.header.kid.as_deref().unwrap_or_default();
        let candidates: Vec<&VerifyingKey> = keys.iter().filter(|k| kid.is_empty() || k.kid == kid).collect();
        if candidates.is_empty() {
            return Err(VerifyError::UnknownKey);
        }
        if self.header.crit.is_some() {
            return Err(VerifyError::BadSignature);
        }
        let ok = candidates.iter().any(|k| {
            k.alg.name() == self.header.alg && k.key.verify_sig(self.signing_input.as_bytes(), &self.signature).is_ok()
        });
        if ok { Ok(()) } else { Err(VerifyError::BadSignature) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_pem() -> String {
        rcgen::KeyPair::generate().expect("ec key").serialize_pem()
    }

    #[test]
    fn ec_sign_and_verify() {
        let key = SigningKey::from_pem(&ec_pem()).expect("load");
        assert_eq!(key.public().algorithm(), Algorithm::ES256);
        let tok = key.sign(br#"{"a":1}"#).expect("sign");
        let parsed = parse(&tok).expect("parse");
        assert_eq!(parsed.payload, br#"{"a":1}"#);
        parsed.verify(std::slice::from_ref(key.public())).expect("verify");
        let other = SigningKey::from_pem(&ec_pem()).expect("other");
        assert_eq!(parsed.verify(std::slice::from_ref(other.public())), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn none_and_hmac_tokens_never_verify() {
        let key = SigningKey::from_pem(&ec_pem()).expect("load");
        let body = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        for alg in ["none", "HS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, key.public().kid()));
            let tok = format!("{h}.{body}.");
            let parsed = parse(&tok).expect("parse");
            assert_eq!(parsed.verify(std::slice::from_ref(key.public())), Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn malformed_tokens() {
        for t in ["", "a.b", "a.b.c.d", "{\"alg\":1}", "!!.e30.e30"] {
            assert!(matches!(parse(t), Err(VerifyError::Malformed(_))), "{t}");
        }
    }
}
