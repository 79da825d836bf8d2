//! The cluster CA: created once, reused on every start, and the signer of every leaf certificate.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::certs::{CertInfo, IssuedCert, LeafSpec, Usage, parse_cert_pem, rfc3339, unix_now};
use crate::dn;
use crate::error::{PkiError, Result};
use crate::files::{FileKind, PUBLIC_MODE, SECRET_MODE, read_optional, tighten_secret_mode, write_atomic};

/// How long a new cluster CA is valid. Renewing a CA means handing every client new credentials, so it
/// outlives any cluster we expect to run.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates are dated this far back so that a node whose clock is a little behind the server's
/// accepts them at once.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The CA's certificate and signing key.
pub(crate) struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Loads the CA from `cert_path`/`key_path`, or creates it if neither exists. Any other state
    /// (one file missing, corrupt, mismatched, expired) is an error and nothing is written, since a CA
    /// cannot be replaced without invalidating every credential it signed.
    pub(crate) fn load_or_create(cert_path: &Path, key_path: &Path) -> Result<Ca> {
        let cert_pem = read_optional(cert_path, FileKind::Ca)?;
        let key_pem = read_optional(key_path, FileKind::Ca)?;
        match (cert_pem, key_pem) {
            (None, None) => {
                let (ca, key_pem) = Ca::generate()?;
                // Key first: a crash between the two writes then leaves a lone key, which is refused below
                // with a remedy, rather than a certificate nobody can sign with.
                write_atomic(key_path, key_pem.as_bytes(), SECRET_MODE)?;
                write_atomic(cert_path, ca.cert_pem.as_bytes(), PUBLIC_MODE)?;
                tracing::info!(cert = %cert_path.display(), "created the cluster CA");
                Ok(ca)
            }
            (Some(_), None) => Err(PkiError::IncompletePair {
                present: cert_path.to_owned(),
                missing: key_path.to_owned(),
                remedy: "restore the CA key from a backup, or remove the certificate too to create a new CA \
                         (every kubeconfig and agent then needs new credentials)",
            }),
            (None, Some(_)) => Err(PkiError::IncompletePair {
                present: key_path.to_owned(),
                missing: cert_path.to_owned(),
                remedy: "restore the CA certificate from a backup, or remove the key too to create a new CA \
                         (every kubeconfig and agent then needs new credentials)",
            }),
            (Some(cert_pem), Some(key_pem)) => {
                tighten_secret_mode(key_path)?;
                Ca::from_pem(cert_path, cert_pem, key_path, &key_pem)
            }
        }
    }

    fn generate() -> Result<(Ca, String)> {
        let key = KeyPair::generate().map_err(|source| PkiError::Generate { what: "the CA key", source })?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // Upstream tools name a self-signed CA "<purpose>@<unix time>" so that a regenerated CA is told
        // apart from the old one in error messages.
        dn.push(DnType::CommonName, format!("rkube-ca@{}", unix_now()));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let cert =
            params.self_signed(&key).map_err(|source| PkiError::Generate { what: "the CA certificate", source })?;
        let key_pem = key.serialize_pem();
        let ca = Ca { cert_pem: cert.pem(), cert_der: cert.der().clone(), issuer: Issuer::new(params, key) };
        Ok((ca, key_pem))
    }

    fn from_pem(cert_path: &Path, cert_pem: String, key_path: &Path, key_pem: &str) -> Result<Ca> {
        let corrupt = |path: &Path, what, detail: String| PkiError::Corrupt {
            path: path.to_owned(),
            what,
            detail,
            remedy: FileKind::Ca.remedy(),
        };
        let cert_der = parse_cert_pem(&cert_pem).map_err(|d| corrupt(cert_path, "PEM certificate", d))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| corrupt(key_path, "PEM private key", format!("the key cannot be decoded ({e})")))?;
        let (_, x509) = X509Certificate::from_der(&cert_der)
            .map_err(|e| corrupt(cert_path, "PEM certificate", format!("cannot be parsed ({e})")))?;
        if !x509.is_ca() {
            return Err(corrupt(
                cert_path,
                "CA certificate",
                "its basic constraints do not allow it to sign certificates".to_owned(),
            ));
        }
        let info = CertInfo::of(&x509);
        if info.public_key != key.public_key_raw() {
            return Err(PkiError::CaKeyMismatch { cert: cert_path.to_owned(), key: key_path.to_owned() });
        }
        let now = unix_now();
        if now < info.not_before || now > info.not_after {
            return Err(PkiError::CaNotValidNow {
                path: cert_path.to_owned(),
                not_before: rfc3339(info.not_before),
                not_after: rfc3339(info.not_after),
            });
        }
        if info.not_after - now < 365 * 86_400 {
            tracing::warn!(
                cert = %cert_path.display(),
                not_after = %rfc3339(info.not_after),
                "the cluster CA expires within a year; plan its rotation"
            );
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| corrupt(cert_path, "CA certificate", format!("rcgen cannot sign with it ({e})")))?;
        Ok(Ca { cert_pem, cert_der, issuer })
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Whether `leaf` carries a valid signature by this CA's key.
    pub(crate) fn issued(&self, leaf: &[u8]) -> bool {
        let (Ok((_, ca)), Ok((_, leaf))) = (X509Certificate::from_der(&self.cert_der), X509Certificate::from_der(leaf))
        else {
            return false;
        };
        leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// Issues a certificate for `spec` with a fresh ECDSA P-256 key.
    pub(crate) fn sign(&self, spec: &LeafSpec) -> Result<IssuedCert> {
        let key = KeyPair::generate().map_err(|source| PkiError::Generate { what: "a certificate key", source })?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(org) = spec.orgs.first() {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        dn.push(DnType::CommonName, spec.cn.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = spec.sans.iter().map(|s| s.to_rcgen()).collect::<Result<_>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match spec.usage {
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + spec.validity;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Generate { what: "a certificate", source })?;
        let failed = |detail: String| PkiError::Generate { what: "a certificate", source: rcgen::Error::X509(detail) };
        let cert_pem = if spec.orgs.len() > 1 {
            let subject = dn::encode_subject(&spec.cn, &spec.orgs);
            let der = dn::replace_subject(cert.der(), &subject, self.issuer.key()).map_err(failed)?;
            // The rewrite bypasses rcgen, so prove the result chains to this CA before handing it out.
            if !self.issued(&der) {
                return Err(failed("the certificate with several organizations does not verify".to_owned()));
            }
            pem_certificate(&der)
        } else {
            cert.pem()
        };
        IssuedCert::from_pem(cert_pem, key.serialize_pem()).map_err(|(_, detail)| failed(detail))
    }
}

/// PEM-armours a DER certificate (64-column base64, as rcgen and openssl write it).
pub fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
