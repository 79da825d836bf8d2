//! The node controllers' flags (node IPAM and node lifecycle), shared by `rkube server` and
//! `rkube controller-manager`, named as kube-controller-manager names them.

/// Node IPAM and node lifecycle flags.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NodeControllerArgs {
    /// Pod network range.
    #[arg(long, env = "RKUBE_CLUSTER_CIDR", default_value = "172.30.0.0/16", help_heading = "(networking)")]
    pub(crate) cluster_cidr: String,
    /// Give each node a `spec.podCIDR` from --cluster-cidr (node IPAM). Turn off when flannel leases subnets from
    /// etcd (--flannel-etcd-endpoints): each agent then sets its node's podCIDR to its lease.
    #[arg(long, env = "RKUBE_ALLOCATE_NODE_CIDRS", default_value_t = true, action = clap::ArgAction::Set, help_heading = "(networking)")]
    pub(crate) allocate_node_cidrs: bool,
    /// Prefix length of each node's pod range cut from --cluster-cidr (node IPAM).
    #[arg(long, env = "RKUBE_NODE_CIDR_MASK_SIZE", default_value_t = 24, help_heading = "(networking)")]
    pub(crate) node_cidr_mask_size: u8,
    /// How long a node may go without renewing its Lease before it is marked NotReady/Unknown.
    #[arg(long, env = "RKUBE_NODE_MONITOR_GRACE_PERIOD", default_value = "40s", value_parser = humantime::parse_duration, help_heading = "(controllers)")]
    pub(crate) node_monitor_grace_period: std::time::Duration,
}

/// Reports `v` unless it is a CIDR.
pub(crate) fn parse_cidr(flag: &str, v: &str, problems: &mut Vec<String>) {
    let ok = v
        .split_once('/')
        .is_some_and(|(ip, len)| ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128));
    if !ok {
        problems.push(format!("{flag} {v:?} is not a CIDR; write it like 10.254.0.0/16"));
    }
}

impl NodeControllerArgs {
    /// The node controllers' settings; problems with the flags are added to `problems`.
    pub(crate) fn validate(&self, problems: &mut Vec<String>) -> rkube_controllers::NodesConfig {
        parse_cidr("--cluster-cidr", &self.cluster_cidr, problems);
        let cluster_prefix = self.cluster_cidr.split_once('/').and_then(|(_, l)| l.parse::<u8>().ok()).unwrap_or(0);
        if self.node_cidr_mask_size < cluster_prefix || self.node_cidr_mask_size > 30 {
            problems.push(format!(
                "--node-cidr-mask-size {} must lie between the --cluster-cidr prefix /{cluster_prefix} and 30",
                self.node_cidr_mask_size
            ));
        }
        if self.node_monitor_grace_period.is_zero() {
            problems.push("--node-monitor-grace-period must be longer than 0s (upstream's default is 40s)".to_owned());
        }
        rkube_controllers::NodesConfig {
            cluster_cidr: self.allocate_node_cidrs.then(|| self.cluster_cidr.clone()),
            node_cidr_mask_size: self.node_cidr_mask_size,
            node_monitor_grace_period: self.node_monitor_grace_period,
        }
    }
}
