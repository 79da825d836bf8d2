//! The service proxy's and cluster DNS's flags (kube-proxy's names where it has them), shared by `rkube agent`
//! and `rkube server`.

/// Service flags of a node.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ServiceArgs {
    /// Service proxy mode: iptables, nftables or ipvs.
    #[arg(long, env = "RKUBE_PROXY_MODE", default_value = "iptables", help_heading = "(agent/services)")]
    proxy_mode: String,
    /// Run no service proxy on this node.
    #[arg(long, env = "RKUBE_DISABLE_PROXY", help_heading = "(agent/services)")]
    disable_proxy: bool,
    /// Run no cluster DNS on this node.
    #[arg(long, env = "RKUBE_DISABLE_DNS", help_heading = "(agent/services)")]
    disable_dns: bool,
    /// SNAT all traffic to service IPs (kube-proxy's --masquerade-all).
    #[arg(long, env = "RKUBE_MASQUERADE_ALL", help_heading = "(agent/services)")]
    masquerade_all: bool,
    /// Node addresses (CIDRs, comma-separated) NodePorts answer on; default: all.
    #[arg(long, env = "RKUBE_NODEPORT_ADDRESSES", value_delimiter = ',', help_heading = "(agent/services)")]
    nodeport_addresses: Vec<String>,
    /// ipvs scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh).
    #[arg(long, env = "RKUBE_IPVS_SCHEDULER", default_value = "rr", help_heading = "(agent/services)")]
    ipvs_scheduler: String,
    /// ipvs mode: interval of full resyncs (kube-proxy's --ipvs-sync-period; replaces --proxy-sync-period).
    #[arg(long, env = "RKUBE_IPVS_SYNC_PERIOD", default_value = "30s", value_parser = humantime::parse_duration, help_heading = "(agent/services)")]
    ipvs_sync_period: std::time::Duration,
    /// ipvs mode: shortest interval between syncs, 0 for every change at once (kube-proxy's
    /// --ipvs-min-sync-period; replaces --proxy-min-sync-period).
    #[arg(long, env = "RKUBE_IPVS_MIN_SYNC_PERIOD", default_value = "0s", value_parser = humantime::parse_duration, help_heading = "(agent/services)")]
    ipvs_min_sync_period: std::time::Duration,
    /// Shortest interval between rule syncs, in seconds.
    #[arg(long, env = "RKUBE_PROXY_MIN_SYNC_PERIOD", default_value_t = 1.0, help_heading = "(agent/services)")]
    proxy_min_sync_period: f64,
    /// Interval of full rule resyncs, in seconds.
    #[arg(long, env = "RKUBE_PROXY_SYNC_PERIOD", default_value_t = 30.0, help_heading = "(agent/services)")]
    proxy_sync_period: f64,
    /// Port of the proxy's /healthz and /metrics (0: none).
    #[arg(long, env = "RKUBE_PROXY_METRICS_PORT", default_value_t = 10249, help_heading = "(agent/services)")]
    proxy_metrics_port: u16,
}

impl ServiceArgs {
    /// The agent's service flags.
    pub(crate) fn flags(&self) -> rkube_agent::services::ServicesFlags {
        rkube_agent::services::ServicesFlags {
            proxy_mode: self.proxy_mode.clone(),
            disable_proxy: self.disable_proxy,
            disable_dns: self.disable_dns,
            masquerade_all: self.masquerade_all,
            nodeport_addresses: self.nodeport_addresses.clone(),
            ipvs_scheduler: self.ipvs_scheduler.clone(),
            min_sync_period_secs: self.proxy_min_sync_period,
            sync_period_secs: self.proxy_sync_period,
            proxy_metrics_port: self.proxy_metrics_port,
            ipvs_sync_period: self.ipvs_sync_period,
            ipvs_min_sync_period: self.ipvs_min_sync_period,
        }
    }
}
