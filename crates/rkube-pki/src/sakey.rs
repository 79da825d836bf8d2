//! The service-account signing key: one keypair that both signs and verifies tokens.
//!
//! One key file, with the public half derived from it, so that the signer and the verifier can never
//! disagree (the founding guides' pit: `--service-account-key-file` and `--service-account-private-key-file`
//! pointing at two different keys, and every token rejected).
//!
//! New keys are RSA 2048 (RS256), as kubeadm and k3s generate: external verifiers of projected tokens
//! (OIDC discovery consumers such as cloud IAM federation) universally accept RS256, while ES256 support
//! is patchier; a key can be moved between rkube and those tools unchanged; and RSA's only cost, a slower
//! key generation, is paid once per cluster. An operator-supplied ECDSA P-256/P-384 key is accepted too.

use std::path::Path;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize};

use crate::error::{PkiError, Result};
use crate::files::{FileKind, SECRET_MODE, read_optional, tighten_secret_mode, write_atomic};

/// The service-account signing key, private and public halves.
#[derive(Clone)]
pub struct ServiceAccountKey {
    private_pem: String,
    public_pem: String,
    public_der: Vec<u8>,
    algorithm: &'static str,
}

impl ServiceAccountKey {
    /// Loads the key at `path`, or creates it (mode 0600) if the file does not exist.
    pub(crate) fn load_or_create(path: &Path) -> Result<ServiceAccountKey> {
        if let Some(pem) = read_optional(path, FileKind::ServiceAccountKey)? {
            tighten_secret_mode(path)?;
            return ServiceAccountKey::from_pem(pem).map_err(|detail| PkiError::Corrupt {
                path: path.to_owned(),
                what: "PEM service-account signing key",
                detail,
                remedy: FileKind::ServiceAccountKey.remedy(),
            });
        }
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|source| PkiError::Generate { what: "the service-account signing key", source })?;
        let pem = key.serialize_pem();
        write_atomic(path, pem.as_bytes(), SECRET_MODE)?;
        tracing::info!(path = %path.display(), "created the service-account signing key");
        ServiceAccountKey::from_pem(pem).map_err(|detail| PkiError::Generate {
            what: "the service-account signing key",
            source: rcgen::Error::PemError(detail),
        })
    }

    fn from_pem(private_pem: String) -> std::result::Result<ServiceAccountKey, String> {
        let key = KeyPair::from_pem(&private_pem).map_err(|e| format!("the key cannot be decoded ({e})"))?;
        let alg = key.algorithm();
        let algorithm = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            "ES256"
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            "ES384"
        } else if alg == &rcgen::PKCS_RSA_SHA256 || alg == &rcgen::PKCS_RSA_SHA384 || alg == &rcgen::PKCS_RSA_SHA512 {
            "RS256"
        } else {
            return Err(format!("its key type ({alg:?}) cannot sign service-account tokens; use RSA or ECDSA P-256"));
        };
        Ok(ServiceAccountKey {
            public_pem: key.public_key_pem(),
            public_der: key.subject_public_key_info(),
            private_pem,
            algorithm,
        })
    }

    /// The private key, PEM as stored (PKCS#8 for keys rkube generated): what the token signer loads.
    pub fn private_key_pem(&self) -> &str {
        &self.private_pem
    }

    /// The public key, PEM SubjectPublicKeyInfo (`PUBLIC KEY`): what the token verifier loads.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public key, DER SubjectPublicKeyInfo: upstream derives the JWT `kid` from its SHA-256.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The JWS algorithm tokens are signed with: `RS256` for RSA keys, `ES256`/`ES384` for ECDSA ones.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key, even in debug logs.
        f.debug_struct("ServiceAccountKey")
            .field("algorithm", &self.algorithm)
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("service.key");
        let first = ServiceAccountKey::load_or_create(&path).expect("create");
        assert_eq!(first.algorithm(), "RS256");
        assert!(first.private_key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(first.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = ServiceAccountKey::load_or_create(&path).expect("load");
        assert_eq!(first.private_key_pem(), second.private_key_pem());
        assert_eq!(first.public_key_der(), second.public_key_der());
    }

    #[test]
    fn accepts_an_operator_supplied_ecdsa_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("service.key");
        let key = KeyPair::generate().expect("ec key");
        std::fs::write(&path, key.serialize_pem()).expect("write");
        let loaded = ServiceAccountKey::load_or_create(&path).expect("load");
        assert_eq!(loaded.algorithm(), "ES256");
        assert_eq!(loaded.public_key_pem(), key.public_key_pem());
    }

    #[test]
    fn corrupt_key_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("service.key");
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        std::fs::write(&path, junk).expect("write");
        let err = ServiceAccountKey::load_or_create(&path).expect_err("corrupt");
        let msg = err.to_string();
        assert!(msg.contains("service.key") && msg.contains("restore"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), junk);
    }
}
