//! Getting a certificate through the certificates API, as the kubelet's bootstrap and rotation do: a fresh
//! ECDSA P-256 key, a CertificateSigningRequest for one signer, then waiting until it is approved and issued.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

use super::JoinError;

/// The kubelet client signer.
pub(crate) const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The kubelet serving signer.
pub(crate) const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// How long the agent waits for a request to be approved and signed.
const WAIT: Duration = Duration::from_secs(300);

/// What to ask for.
pub(crate) struct Ask<'a> {
    pub(crate) signer: &'a str,
    /// `system:node:<name>`.
    pub(crate) cn: &'a str,
    pub(crate) dns: &'a [String],
    pub(crate) ips: &'a [IpAddr],
    pub(crate) usages: &'a [&'a str],
}

/// An issued certificate and its key, PEM.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

fn request_pem(ask: &Ask<'_>, key: &KeyPair) -> Result<String, JoinError> {
    let bad = |e: rcgen::Error| JoinError::Local(format!("making the certificate request: {e}"));
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "system:nodes");
    dn.push(DnType::CommonName, ask.cn);
    params.distinguished_name = dn;
    for d in ask.dns {
        params.subject_alt_names.push(SanType::DnsName(d.clone().try_into().map_err(bad)?));
    }
    for ip in ask.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.serialize_request(key).and_then(|r| r.pem()).map_err(bad)
}

/// A client error of the certificates API, named for the operator.
fn api_error(server: &str, what: &str, e: kube::Error) -> JoinError {
    match e {
        kube::Error::Api(s) if s.code == 401 => JoinError::TokenRefused { server: server.to_owned() },
        kube::Error::Api(s) if s.code == 403 => {
            JoinError::Forbidden { server: server.to_owned(), detail: s.message.clone() }
        }
        e @ kube::Error::Api(_) => JoinError::Api { what: what.to_owned(), detail: super::discover::error_chain(&e) },
        // Anything but an answer (connecting, TLS, a connection lost mid-request): another server may serve.
        e => JoinError::Unreachable {
            server: server.to_owned(),
            detail: format!("{what}: {}", super::discover::error_chain(&e)),
        },
    }
}

fn condition<'a>(csr: &'a CertificateSigningRequest, ty: &str) -> Option<&'a str> {
    let cs = csr.status.as_ref()?.conditions.as_ref()?;
    cs.iter().find(|c| c.type_ == ty && c.status == "True").map(|c| c.message.as_deref().unwrap_or_default())
}

/// Creates the request with `client` (the bootstrap token or the node's current certificate) and waits for
/// the certificate.
pub(crate) async fn request(client: &kube::Client, server: &str, ask: &Ask<'_>) -> Result<Issued, JoinError> {
    let key = KeyPair::generate().map_err(|e| JoinError::Local(format!("generating a key: {e}")))?;
    let pem = request_pem(ask, &key)?;
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta { generate_name: Some("csr-".to_owned()), ..Default::default() },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.into_bytes()),
            signer_name: ask.signer.to_owned(),
            usages: Some(ask.usages.iter().map(|u| (*u).to_owned()).collect()),
            ..Default::default()
        },
        status: None,
    };
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    let created =
        api.create(&PostParams::default(), &csr).await.map_err(|e| api_error(server, "creating the request", e))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, signer = ask.signer, "certificate requested; waiting for approval");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut delay = Duration::from_millis(200);
    loop {
        let current = api.get(&name).await.map_err(|e| api_error(server, "reading the request", e))?;
        if let Some(message) = condition(&current, "Denied") {
            return Err(JoinError::Denied { name, message: message.to_owned() });
        }
        if let Some(message) = condition(&current, "Failed") {
            return Err(JoinError::Failed { name, message: message.to_owned() });
        }
        let cert = current.status.as_ref().and_then(|s| s.certificate.as_ref()).filter(|c| !c.0.is_empty());
        if let (Some(_), Some(cert)) = (condition(&current, "Approved"), cert) {
            let cert_pem = String::from_utf8(cert.0.clone()).map_err(|_| JoinError::Failed {
                name: name.clone(),
                message: "the certificate is not PEM".to_owned(),
            })?;
            tracing::info!(csr = %name, "certificate issued");
            return Ok(Issued { cert_pem, key_pem: key.serialize_pem() });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(JoinError::NotApproved { name, waited: WAIT });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
