//! Finding the cluster CA before trusting it, as kubeadm's token discovery does: an anonymous read of
//! `kube-public/cluster-info` over TLS that is not verified yet (no credential is sent), whose CA must hash to
//! the value the join token pins. Only then is the CA trusted and the bootstrap token sent.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::JoinError;
use super::token::{JoinToken, ca_hash};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster CA (PEM bytes as the server publishes them) of `server`, checked against the token's pin.
pub(crate) async fn cluster_ca(server: &str, token: &JoinToken) -> Result<Vec<u8>, JoinError> {
    let not_rkube = |detail: String| JoinError::NotRkube { server: server.to_owned(), detail };
    let url = server.parse().map_err(|e| JoinError::BadServer { server: server.to_owned(), detail: format!("{e}") })?;
    let mut config = kube::Config::new(url);
    // Not trusted yet: the CA is checked against the pin below, before anything secret is sent.
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(TIMEOUT);
    config.read_timeout = Some(TIMEOUT);
    let client = kube::Client::try_from(config).map_err(|e| not_rkube(e.to_string()))?;
    tracing::info!(%server, "reading the cluster CA from kube-public/cluster-info before trusting it (no credential sent)");
    let cm = match Api::<ConfigMap>::namespaced(client, "kube-public").get("cluster-info").await {
        Ok(cm) => cm,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(not_rkube("it has no kube-public/cluster-info ConfigMap to join with".to_owned()));
        }
        Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
            return Err(not_rkube(format!(
                "it does not let joining nodes read kube-public/cluster-info anonymously ({} {})",
                s.code, s.reason
            )));
        }
        Err(kube::Error::Api(s)) => {
            return Err(not_rkube(format!("it answered {} {}: {}", s.code, s.reason, s.message)));
        }
        Err(kube::Error::SerdeError(e)) => {
            return Err(not_rkube(format!("its answer is not a Kubernetes object ({e})")));
        }
        Err(e) => {
            return Err(JoinError::Unreachable { server: server.to_owned(), detail: error_chain(&e) });
        }
    };
    let kubeconfig = cm
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .ok_or_else(|| not_rkube("its cluster-info ConfigMap has no kubeconfig".to_owned()))?;
    let ca = ca_of_kubeconfig(kubeconfig).map_err(not_rkube)?;
    let got = ca_hash(&ca);
    if got != token.ca_hash() {
        return Err(JoinError::CaMismatch { server: server.to_owned(), pinned: token.ca_hash().to_owned(), got });
    }
    Ok(ca)
}

/// The CA bundle of the first cluster of a kubeconfig (`certificate-authority-data`, decoded).
pub(crate) fn ca_of_kubeconfig(text: &str) -> Result<Vec<u8>, String> {
    let doc: serde_json::Value =
        serde_yaml::from_str(text).map_err(|e| format!("its cluster-info kubeconfig cannot be read ({e})"))?;
    let data = doc
        .pointer("/clusters/0/cluster/certificate-authority-data")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "its cluster-info kubeconfig has no certificate-authority-data".to_owned())?;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("its cluster-info CA is not base64 ({e})"))
}

/// An error and its causes on one line (connection errors hide the useful part in their sources).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ca_of_a_cluster_info_kubeconfig() {
        let kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: ''\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: YWJj\n";
        assert_eq!(ca_of_kubeconfig(kc).expect("ca"), b"abc");
        assert!(ca_of_kubeconfig("clusters: []").is_err());
    }
}
