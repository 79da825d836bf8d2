//! The pod network's flags (flannel's names where flannel has them), shared by `rkube agent` and `rkube server`.

use std::path::PathBuf;

/// Pod-network flags of a node.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NetArgs {
    /// Pod network backend: vxlan, host-gw, or none (a node-local bridge only: no traffic between nodes).
    #[arg(long, env = "RKUBE_FLANNEL_BACKEND", default_value = "vxlan", help_heading = "(agent/network)")]
    flannel_backend: String,
    /// The uplink interface by name (flannel's -iface; default: the interface of the default route).
    #[arg(long, env = "RKUBE_FLANNEL_IFACE", help_heading = "(agent/network)")]
    flannel_iface: Option<String>,
    /// The uplink interface by regular expression (flannel's -iface-regex).
    #[arg(long, env = "RKUBE_FLANNEL_IFACE_REGEX", help_heading = "(agent/network)")]
    flannel_iface_regex: Option<String>,
    /// Lease node subnets in this etcd (comma-separated URLs), in flannel's layout; default: the node's podCIDR.
    #[arg(long, env = "RKUBE_FLANNEL_ETCD_ENDPOINTS", value_delimiter = ',', help_heading = "(agent/network)")]
    flannel_etcd_endpoints: Vec<String>,
    /// flannel's etcd prefix (the guides use /kube-centos/network).
    #[arg(
        long,
        env = "RKUBE_FLANNEL_ETCD_PREFIX",
        default_value = "/coreos.com/network",
        help_heading = "(agent/network)"
    )]
    flannel_etcd_prefix: String,
    /// Where flannel's subnet.env is written.
    #[arg(
        long,
        env = "RKUBE_FLANNEL_SUBNET_ENV",
        default_value = "/run/flannel/subnet.env",
        help_heading = "(agent/network)"
    )]
    flannel_subnet_env: PathBuf,
    /// Where the docker options file (mk-docker-opts.sh's DOCKER_NETWORK_OPTIONS) is written.
    #[arg(
        long,
        env = "RKUBE_FLANNEL_DOCKER_OPTS",
        default_value = "/run/flannel/docker",
        help_heading = "(agent/network)"
    )]
    flannel_docker_opts: PathBuf,
}

impl NetArgs {
    /// The agent's network flags, with the cluster's pod network and each node's prefix length.
    pub(crate) fn flags(&self, cluster_cidr: &str, subnet_len: u8) -> rkube_agent::network::NetworkFlags {
        rkube_agent::network::NetworkFlags {
            backend: self.flannel_backend.clone(),
            iface: self.flannel_iface.clone(),
            iface_regex: self.flannel_iface_regex.clone(),
            cluster_cidr: cluster_cidr.to_owned(),
            subnet_len,
            etcd_endpoints: self.flannel_etcd_endpoints.clone(),
            etcd_prefix: self.flannel_etcd_prefix.clone(),
            subnet_env: self.flannel_subnet_env.clone(),
            docker_opts: self.flannel_docker_opts.clone(),
        }
    }
}
