//! TLS of the agent API (port 10250): a serving certificate for the node's IP and name, and client
//! certificates required from the cluster CA (the API server's kubelet-client identity), as upstream's kubelet
//! with `--client-ca-file` and anonymous access off.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// How long an in-process serving certificate is valid (a new one is issued at every start).
const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The agent API's TLS when the agent runs inside `rkube server`: a serving certificate for `node_ip` and
/// `node_name` issued now by the server's CA, never written to disk.
pub fn in_process(pki: &rkube_pki::Pki, node_name: &str, node_ip: IpAddr) -> Result<Arc<rustls::ServerConfig>> {
    let mut sans = vec![rkube_pki::San::Ip(node_ip), rkube_pki::San::Dns(node_name.to_owned())];
    if !node_ip.is_loopback() {
        sans.push(rkube_pki::San::Ip(IpAddr::from([127, 0, 0, 1])));
    }
    let cert = pki
        .issue_serving_cert(node_name, &sans, SERVING_VALIDITY)
        .map_err(|e| Error::Tls(format!("issuing the node's serving certificate: {e}")))?;
    server_config(vec![cert.cert_der().clone()], cert.key_der(), pki.ca_cert_der().clone())
}

/// The agent API's TLS from files (`--tls-cert-file`, `--tls-private-key-file`, `--client-ca-file`).
pub fn from_files(cert: &Path, key: &Path, client_ca: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let bad = |p: &Path, e: &dyn std::fmt::Display| Error::Tls(format!("reading {}: {e}", p.display()));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    if chain.is_empty() {
        return Err(bad(cert, &"no certificate in it"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let ca = CertificateDer::from_pem_file(client_ca).map_err(|e| bad(client_ca, &e))?;
    server_config(chain, key_der, ca)
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: CertificateDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let tls = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let provider = rkube_pki::crypto_provider();
    let mut roots = RootCertStore::empty();
    roots.add(client_ca).map_err(|e| tls(&e))?;
    // No `allow_unauthenticated`: the agent API serves only clients with a certificate from the cluster CA.
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| tls(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    // HTTP/1.1 only: exec, attach and port-forward are HTTP/1.1 upgrades.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
