//! rustls glue for the API server: the server configuration and the identity in a client certificate.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;

use crate::certs::{CertInfo, IssuedCert};
use crate::error::{PkiError, Result};

/// The one crypto provider of the project. Passed explicitly rather than installed as the process
/// default so that this crate works whatever else is (or is not) linked into the binary.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The user a verified client certificate authenticates as, by upstream's rule: user name = subject
/// common name, groups = subject organizations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The user name (CN).
    pub username: String,
    /// The groups (every O), in certificate order.
    pub groups: Vec<String>,
}

/// Reads the identity from a client certificate's DER. Call it only on a certificate the TLS layer has
/// verified against the CA: this checks nothing but the subject. `None` if the certificate does not
/// parse or has an empty common name (upstream refuses those too).
pub fn client_identity(cert_der: &[u8]) -> Option<ClientIdentity> {
    let info = CertInfo::parse(cert_der).ok()?;
    let username = info.cn.filter(|cn| !cn.is_empty())?;
    Some(ClientIdentity { username, groups: info.orgs })
}

/// The API server's TLS configuration: serves `serving` and asks every client for a certificate,
/// verifying any it gets against `client_ca`. Clients without a certificate are still let in, to
/// authenticate with a bearer token over HTTP; a certificate that does not verify ends the handshake.
/// ALPN offers `h2` and `http/1.1`.
pub fn server_tls_config(serving: &IssuedCert, client_ca: &CertificateDer<'_>) -> Result<Arc<rustls::ServerConfig>> {
    let provider = crypto_provider();
    let mut roots = RootCertStore::empty();
    roots.add(client_ca.clone().into_owned()).map_err(|source| PkiError::Tls { source })?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|source| PkiError::ClientVerifier { source })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| PkiError::Tls { source })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![serving.cert_der().clone()], serving.key_der())
        .map_err(|source| PkiError::Tls { source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting `ca`, presenting `identity` if given: for rkube's own components
/// and tests that talk to the API server or a kubelet.
pub fn client_tls_config(ca: &CertificateDer<'_>, identity: Option<&IssuedCert>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned()).map_err(|source| PkiError::Tls { source })?;
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| PkiError::Tls { source })?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert_der().clone()], id.key_der())
            .map_err(|source| PkiError::Tls { source })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
