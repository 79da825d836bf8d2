//! The signer: issues certificates for approved CSRs of the `kubernetes.io/*` signers rkube serves, with the
//! cluster CA, as upstream's csrsigning controller does with `--cluster-signing-{cert,key}-file`.

use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use time::OffsetDateTime;

use crate::Error;
use crate::request::Parsed;
use crate::rules::{API_CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, kubelet_client, kubelet_serving};

/// Upstream's `--cluster-signing-duration` default: one year.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Upstream backdates issued certificates by five minutes for clock skew.
const BACKDATE: Duration = Duration::from_secs(300);
/// Below this lifetime a certificate is "short-lived": its end is not pulled in by the backdate (upstream's rule).
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest `expirationSeconds` honoured (upstream's minimum).
const MIN_DURATION: Duration = Duration::from_secs(600);

/// The cluster CA, able to sign requests.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    duration: Duration,
    ca_not_after: OffsetDateTime,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("duration", &self.duration).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from the CA certificate and key (PEM), issuing certificates valid for at most `duration`.
    pub fn from_pem(ca_cert_pem: &str, ca_key_pem: &str, duration: Duration) -> Result<Signer, Error> {
        let key = KeyPair::from_pem(ca_key_pem).map_err(|e| Error::Ca(format!("the CA key: {e}")))?;
        let issuer =
            Issuer::from_ca_cert_pem(ca_cert_pem, key).map_err(|e| Error::Ca(format!("the CA certificate: {e}")))?;
        let ca_not_after = CertificateDer::from_pem_slice(ca_cert_pem.as_bytes())
            .ok()
            .and_then(|der| {
                let (_, ca) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
                OffsetDateTime::from_unix_timestamp(ca.validity().not_after.timestamp()).ok()
            })
            .ok_or_else(|| Error::Ca("the CA certificate cannot be parsed".to_owned()))?;
        Ok(Signer { issuer, duration, ca_not_after })
    }

    /// Whether this signer serves `signer_name`.
    pub(crate) fn handles(signer_name: &str) -> bool {
        matches!(signer_name, KUBELET_CLIENT_SIGNER | KUBELET_SERVING_SIGNER | API_CLIENT_SIGNER)
    }

    /// Signs an approved request; `Err` is the reason it cannot be signed (a Failed condition's message).
    pub(crate) fn sign(
        &self,
        signer_name: &str,
        req: &Parsed,
        usages: &[String],
        expiration_seconds: Option<i32>,
    ) -> Result<String, String> {
        match signer_name {
            KUBELET_CLIENT_SIGNER => kubelet_client(req, usages)?,
            KUBELET_SERVING_SIGNER => kubelet_serving(req, usages)?,
            _ => {
                if usages.iter().any(|u| u == "server auth") {
                    return Err(format!("invalid usage for client certificate: {usages:?}"));
                }
            }
        }
        let mut csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(req.der.clone()))
            .map_err(|e| format!("the certificate request is not acceptable: {e}"))?;
        let mut ttl = self.duration;
        if let Some(secs) = expiration_seconds.and_then(|s| u64::try_from(s).ok()) {
            ttl = ttl.min(Duration::from_secs(secs).max(MIN_DURATION));
        }
        let now = OffsetDateTime::now_utc();
        if now >= self.ca_not_after {
            return Err(format!(
                "refusing to sign a certificate that expired in the past: NotAfter={}",
                self.ca_not_after
            ));
        }
        let params = &mut csr.params;
        params.not_before = now - BACKDATE;
        // Upstream: the lifetime is `ttl` counted from the backdated start, except for short-lived certificates,
        // and never beyond the CA's own end.
        params.not_after = (if ttl < SHORT { now + ttl } else { now + ttl - BACKDATE }).min(self.ca_not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = Vec::new();
        params.extended_key_usages = Vec::new();
        let mut unrecognized = Vec::new();
        for usage in usages {
            let (ku, eku) = usage_of(usage);
            match (ku, eku) {
                (Some(k), _) if !params.key_usages.contains(&k) => params.key_usages.push(k),
                (_, Some(e)) if !params.extended_key_usages.contains(&e) => params.extended_key_usages.push(e),
                (None, None) => unrecognized.push(usage.as_str()),
                _ => {}
            }
        }
        if !unrecognized.is_empty() {
            return Err(format!("unrecognized usage values: {unrecognized:?}"));
        }
        params.serial_number = Some(SerialNumber::from_slice(uuid::Uuid::new_v4().as_bytes()));
        params.use_authority_key_identifier_extension = true;
        let cert = csr.signed_by(&self.issuer).map_err(|e| format!("signing failed: {e}"))?;
        Ok(cert.pem())
    }
}

/// A usage of the certificates API as an X.509 key usage or extended key usage (upstream's tables, less the
/// IPsec and server-gated-crypto purposes rcgen cannot write).
fn usage_of(usage: &str) -> (Option<KeyUsagePurpose>, Option<ExtendedKeyUsagePurpose>) {
    use ExtendedKeyUsagePurpose as E;
    use KeyUsagePurpose as K;
    match usage {
        "signing" | "digital signature" => (Some(K::DigitalSignature), None),
        "content commitment" => (Some(K::ContentCommitment), None),
        "key encipherment" => (Some(K::KeyEncipherment), None),
        "key agreement" => (Some(K::KeyAgreement), None),
        "data encipherment" => (Some(K::DataEncipherment), None),
        "cert sign" => (Some(K::KeyCertSign), None),
        "crl sign" => (Some(K::CrlSign), None),
        "encipher only" => (Some(K::EncipherOnly), None),
        "decipher only" => (Some(K::DecipherOnly), None),
        "any" => (None, Some(E::Any)),
        "server auth" => (None, Some(E::ServerAuth)),
        "client auth" => (None, Some(E::ClientAuth)),
        "code signing" => (None, Some(E::CodeSigning)),
        "email protection" | "s/mime" => (None, Some(E::EmailProtection)),
        "timestamping" => (None, Some(E::TimeStamping)),
        "ocsp signing" => (None, Some(E::OcspSigning)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};

    #[test]
    fn signs_a_node_serving_request_with_its_names() {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let signer = Signer::from_pem(&ca_cert.pem(), &ca_key.serialize_pem(), DEFAULT_DURATION).expect("signer");
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "system:nodes");
        dn.push(DnType::CommonName, "system:node:n1");
        p.distinguished_name = dn;
        p.subject_alt_names =
            vec![SanType::DnsName("n1".try_into().expect("dns")), SanType::IpAddress([10, 0, 0, 1].into())];
        let pem = p.serialize_request(&key).expect("csr").pem().expect("pem");
        let req = crate::request::parse(pem.as_bytes()).expect("parse");
        assert_eq!(req.dns, ["n1"]);
        let usages = vec!["digital signature".to_owned(), "server auth".to_owned()];
        let cert = signer.sign(KUBELET_SERVING_SIGNER, &req, &usages, Some(3600)).expect("signed");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'_>| d.to_vec())
            .expect("pem");
        let (_, x) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let (_, ca_x) = x509_parser::parse_x509_certificate(ca_cert.der()).expect("x509");
        assert!(x.verify_signature(Some(ca_x.public_key())).is_ok());
        // Short-lived (under 8 h): backdated start, end not pulled in.
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 300);
        // Long-lived: the lifetime counts from the backdated start.
        let cert = signer.sign(KUBELET_SERVING_SIGNER, &req, &usages, None).expect("signed");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'_>| d.to_vec())
            .expect("pem");
        let (_, x) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(u64::try_from(life).expect("positive"), DEFAULT_DURATION.as_secs());
        // A client usage on the serving signer is refused with upstream's reason.
        let bad = vec!["digital signature".to_owned(), "client auth".to_owned()];
        assert!(signer.sign(KUBELET_SERVING_SIGNER, &req, &bad, None).is_err());
    }
}
