//! Leaf certificates: what to issue (`LeafSpec`), what was issued (`IssuedCert`), and whether a stored one still fits.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::ca::Ca;
use crate::san::San;

/// How long the certificates rkube issues for itself stay valid.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A stored certificate with less than this left is re-issued at start (as k3s does), so a cluster
/// restarted at least every few months never runs on an expired certificate.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Whether a leaf certificate authenticates a client or serves TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    /// TLS client authentication (extended key usage clientAuth).
    Client,
    /// TLS server (extended key usage serverAuth).
    Server,
}

/// Everything that goes into a leaf certificate besides its key and dates.
#[derive(Clone, Debug)]
pub(crate) struct LeafSpec {
    /// Subject common name: the user name of a client certificate.
    pub(crate) cn: String,
    /// Subject organizations: the groups of a client certificate.
    pub(crate) orgs: Vec<String>,
    /// Subject alternative names (serving certificates).
    pub(crate) sans: Vec<San>,
    pub(crate) usage: Usage,
    pub(crate) validity: Duration,
}

/// A certificate with its private key, as PEM (what files and kubeconfigs hold) and DER (what rustls takes).
pub struct IssuedCert {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: PrivateKeyDer<'static>,
}

impl IssuedCert {
    /// Parses a certificate and key from PEM; the error says which of the two is bad and why.
    pub(crate) fn from_pem(cert_pem: String, key_pem: String) -> Result<IssuedCert, (Which, String)> {
        let cert_der = parse_cert_pem(&cert_pem).map_err(|e| (Which::Cert, e))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| (Which::Key, format!("no private key found in PEM ({e})")))?;
        // rustls accepts any PEM-framed bytes; rcgen actually decodes the key, catching corruption inside it.
        rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| (Which::Key, format!("the private key cannot be decoded ({e})")))?;
        Ok(IssuedCert { cert_pem, key_pem, cert_der, key_der })
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (PKCS#8 for keys rkube generated).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The private key, DER, as rustls takes it.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        self.key_der.clone_key()
    }
}

impl Clone for IssuedCert {
    fn clone(&self) -> IssuedCert {
        IssuedCert {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            cert_der: self.cert_der.clone(),
            key_der: self.key_der.clone_key(),
        }
    }
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key, even in debug logs.
        f.debug_struct("IssuedCert").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// Which half of a certificate/key pair a parse error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Cert,
    Key,
}

/// Decodes exactly one PEM certificate and checks that it is X.509.
pub(crate) fn parse_cert_pem(pem: &str) -> Result<CertificateDer<'static>, String> {
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let der = match certs.next() {
        Some(Ok(der)) => der,
        Some(Err(e)) => return Err(format!("bad PEM ({e})")),
        None => return Err("no CERTIFICATE block found".to_owned()),
    };
    X509Certificate::from_der(&der).map_err(|e| format!("the certificate cannot be parsed ({e})"))?;
    Ok(der)
}

/// What rkube needs to know about a parsed certificate.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    pub(crate) cn: Option<String>,
    pub(crate) orgs: Vec<String>,
    pub(crate) sans: Vec<San>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// The subject public key (the BIT STRING contents), to match against a private key.
    pub(crate) public_key: Vec<u8>,
}

impl CertInfo {
    pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("the certificate cannot be parsed ({e})"))?;
        Ok(CertInfo::of(&cert))
    }

    pub(crate) fn of(cert: &X509Certificate<'_>) -> CertInfo {
        let subject = cert.subject();
        let cn = subject.iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_owned);
        let orgs = subject.iter_organization().filter_map(|a| a.as_str().ok()).map(str::to_owned).collect();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push(San::Dns(d.to_ascii_lowercase())),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            sans.push(San::Ip(IpAddr::from(v4)));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            sans.push(San::Ip(IpAddr::from(v6)));
                        }
                    }
                    _ => {}
                }
            }
        }
        CertInfo {
            cn,
            orgs,
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        }
    }
}

/// Seconds since the epoch, saturating for clocks before 1970 (which would make every certificate "not yet valid").
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Why a stored leaf certificate must be re-issued, or `None` if it still fits `spec`. Only parsable
/// files get here: corrupt ones are errors, because the operator may want to restore them.
pub(crate) fn reissue_reason(ca: &Ca, issued: &IssuedCert, spec: &LeafSpec, now: i64) -> Option<String> {
    let info = match CertInfo::parse(issued.cert_der()) {
        Ok(info) => info,
        Err(e) => return Some(e),
    };
    match rcgen::KeyPair::from_pem(issued.key_pem()) {
        Ok(key) if key.public_key_raw() == info.public_key.as_slice() => {}
        Ok(_) => return Some("the key file does not match the certificate".to_owned()),
        Err(e) => return Some(format!("the key cannot be decoded ({e})")),
    }
    if !ca.issued(issued.cert_der()) {
        return Some("it is not signed by the current cluster CA".to_owned());
    }
    if info.not_before > now + 300 {
        return Some("it is not valid yet (was the clock turned back?)".to_owned());
    }
    let renew_before = i64::try_from(RENEW_BEFORE.min(spec.validity / 2).as_secs()).unwrap_or(i64::MAX);
    if info.not_after - now < renew_before {
        return Some(format!(
            "it expires at {} (less than {} days left)",
            rfc3339(info.not_after),
            renew_before / 86_400
        ));
    }
    if info.cn.as_deref() != Some(spec.cn.as_str()) {
        return Some(format!("its common name is {:?}, not {:?}", info.cn.unwrap_or_default(), spec.cn));
    }
    let mut have = info.orgs.clone();
    let mut want = spec.orgs.clone();
    have.sort();
    want.sort();
    if have != want {
        return Some(format!("its organizations are {have:?}, not {want:?}"));
    }
    let missing: Vec<String> = spec.sans.iter().filter(|s| !info.sans.contains(s)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Some(format!("it lacks the subject alternative names {}", missing.join(", ")));
    }
    None
}

/// Formats unix seconds as RFC 3339 for messages.
pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}
