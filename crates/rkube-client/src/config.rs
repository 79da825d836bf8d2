//! Client configurations for components: in the server's process, an identity issued by the cluster CA and
//! kept in memory (the same HTTPS path a remote component takes); elsewhere, a kubeconfig file.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long an in-memory client certificate is valid; a new one is issued at every start.
const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A kube-rs configuration for `user` in `groups`, reaching `server_url` over TLS that trusts the cluster CA,
/// with a client certificate issued now by the CA and never written to disk.
pub async fn in_process(server_url: &str, pki: &rkube_pki::Pki, user: &str, groups: &[&str]) -> Result<kube::Config> {
    let cert = pki
        .issue_client_cert(user, groups, CERT_VALIDITY)
        .map_err(|source| Error::Certificate { user: user.to_owned(), source })?;
    let kubeconfig =
        rkube_pki::Kubeconfig::with_client_cert(server_url, pki.ca_cert_pem(), user, cert.cert_pem(), cert.key_pem());
    let yaml = kubeconfig.to_yaml().map_err(|e| Error::Kubeconfig(e.to_string()))?;
    from_yaml(&yaml).await
}

/// A kube-rs configuration from a kubeconfig file (its current context).
pub async fn from_file(path: &Path) -> Result<kube::Config> {
    let yaml =
        std::fs::read_to_string(path).map_err(|e| Error::Kubeconfig(format!("reading {}: {e}", path.display())))?;
    from_yaml(&yaml).await
}

async fn from_yaml(yaml: &str) -> Result<kube::Config> {
    let parsed = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(e.to_string()))
}

/// A leader-election identity unique to this process (upstream's `hostname_uuid`).
pub fn identity(node_name: &str) -> String {
    format!("{node_name}_{}", uuid::Uuid::new_v4())
}

/// The CA bundle a configuration trusts, as PEM (however the kubeconfig gave it: inline data or a file);
/// `None` when it trusts the system's roots.
pub fn ca_pem(config: &kube::Config) -> Option<String> {
    let certs = config.root_cert.as_ref().filter(|c| !c.is_empty())?;
    Some(certs.iter().map(|der| rkube_pki::pem_certificate(der)).collect())
}
