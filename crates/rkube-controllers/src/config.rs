//! The controller manager's configuration, and the in-process client identity the server gives it.

use crate::error::Result;

/// The user name the controller manager authenticates as (upstream's).
pub const USER: &str = "system:kube-controller-manager";

/// The group of that user. `system:masters` (authorization bypass) because rkube's RBAC bootstrap has no
/// `system:controller:*` roles yet, and what the namespace controller and the garbage collector need is
/// upstream's grant to them anyway: every verb they use on every resource, custom ones included.
pub const GROUP: &str = rkube_pki::MASTERS_GROUP;

/// Everything the controllers need to run.
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// How to reach the API server: URL, trusted CA, client identity. The controllers talk to the API only.
    pub kube: kube::Config,
    /// The cluster CA certificate (PEM) that the root CA publisher puts in every namespace as `kube-root-ca.crt`.
    pub root_ca_pem: String,
    /// This process's leader-election identity (unique per process, as upstream's `hostname_uuid`).
    pub identity: String,
    /// Whether to act only while holding the `kube-system/kube-controller-manager` lease (on by default;
    /// off only where a single process is guaranteed, e.g. tests).
    pub leader_elect: bool,
    /// Node IPAM and node lifecycle settings.
    pub nodes: rkube_controllers_nodes::NodesConfig,
    /// Where readiness and leadership are reported for a status port (`rkube controller-manager`'s).
    pub health: Option<std::sync::Arc<rkube_status::Health>>,
}

impl ControllersConfig {
    /// The configuration for controllers inside the server process: TLS to `server_url` trusting the cluster
    /// CA, as `system:kube-controller-manager` with a client certificate issued now by the CA and kept in
    /// memory only. `node_name` starts the leader-election identity.
    pub async fn in_process(server_url: &str, pki: &rkube_pki::Pki, node_name: &str) -> Result<ControllersConfig> {
        let kube = rkube_client::config::in_process(server_url, pki, USER, &[GROUP]).await?;
        Ok(ControllersConfig {
            kube,
            root_ca_pem: pki.ca_cert_pem().to_owned(),
            identity: rkube_client::config::identity(node_name),
            leader_elect: true,
            nodes: rkube_controllers_nodes::NodesConfig::default(),
            health: None,
        })
    }
}
