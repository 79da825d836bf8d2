//! The agent's identity towards the API server: in `rkube server`, a client certificate issued in memory by the
//! server's CA; for a remote agent, a kubeconfig (joining with a token and a CSR comes with issue 8).

use crate::{Error, Result};

/// The groups of the in-process node identity. `system:masters` stands in until RBAC has the node roles
/// (upstream's Node authorizer and `system:node` ClusterRole); then only `system:nodes` remains.
pub const IN_PROCESS_GROUPS: [&str; 2] = ["system:nodes", "system:masters"];

/// The node's user name, as upstream's (`system:node:<name>`).
pub fn node_user(node_name: &str) -> String {
    format!("system:node:{node_name}")
}

/// A client for the agent inside `rkube server`: `system:node:<name>` over HTTPS to `server_url`.
pub async fn in_process_client(server_url: &str, pki: &rkube_pki::Pki, node_name: &str) -> Result<kube::Client> {
    let config = rkube_client::config::in_process(server_url, pki, &node_user(node_name), &IN_PROCESS_GROUPS)
        .await
        .map_err(|e| Error::Identity(format!("issuing the node's client certificate: {e}")))?;
    kube::Client::try_from(config).map_err(|e| Error::Identity(format!("building the node's client: {e}")))
}

/// A client from a kubeconfig file; `servers` (URLs) replace the kubeconfig's server when given. With several,
/// the client fails over among them: it talks to a balancer on 127.0.0.1 (`rkube_client::failover`, started on
/// this runtime and kept for the process's life) that relays each connection to the first server answering.
pub async fn kubeconfig_client(path: &std::path::Path, servers: &[String]) -> Result<kube::Client> {
    let mut config = rkube_client::config::from_file(path)
        .await
        .map_err(|e| Error::Identity(format!("kubeconfig {}: {e}", path.display())))?;
    let url = match servers {
        [] => None,
        [one] => Some(one.clone()),
        several => {
            let addrs = rkube_client::failover::resolve(several)
                .await
                .map_err(|e| Error::Identity(format!("--server: {e}")))?;
            let balancer =
                rkube_client::failover::Failover::start(addrs).await.map_err(|e| Error::Identity(e.to_string()))?;
            // Every rkube serving certificate holds 127.0.0.1, so TLS checks out whichever server answers.
            let url = format!("https://{}", balancer.local_addr());
            balancer.detach();
            Some(url)
        }
    };
    if let Some(url) = url {
        config.cluster_url = url.parse().map_err(|e| Error::Identity(format!("--server {url:?}: {e}")))?;
    }
    kube::Client::try_from(config).map_err(|e| Error::Identity(format!("building the node's client: {e}")))
}
