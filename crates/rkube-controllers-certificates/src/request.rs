//! What the approver and signer read from a CSR's PEM request: subject and subject alternative names.

use std::net::IpAddr;

use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// A parsed PKCS#10 request (its signature is checked by the signer, through rcgen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The request, DER.
    pub(crate) der: Vec<u8>,
    /// Subject common name.
    pub(crate) cn: String,
    /// Subject organizations, in order.
    pub(crate) orgs: Vec<String>,
    /// DNS names.
    pub(crate) dns: Vec<String>,
    /// IP addresses.
    pub(crate) ips: Vec<IpAddr>,
    /// How many email addresses.
    pub(crate) emails: usize,
    /// How many URIs.
    pub(crate) uris: usize,
}

/// Parses `spec.request` (PEM bytes), as upstream's `ParseCSR`: the first `CERTIFICATE REQUEST` block.
pub(crate) fn parse(pem: &[u8]) -> Result<Parsed, String> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    let (_, req) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|e| format!("the certificate request cannot be parsed: {e}"))?;
    let info = &req.certification_request_info;
    let mut out = Parsed {
        der: der.as_ref().to_vec(),
        cn: info.subject.iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_owned(),
        orgs: info.subject.iter_organization().filter_map(|a| a.as_str().ok().map(str::to_owned)).collect(),
        ..Parsed::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            out.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            out.ips.push(IpAddr::from(v6));
                        }
                    }
                    GeneralName::RFC822Name(_) => out.emails += 1,
                    GeneralName::URI(_) => out.uris += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}
