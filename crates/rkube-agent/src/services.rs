//! Services on the node (issue 7): the service proxy (rkube-proxy: iptables, nftables or ipvs) and the
//! cluster DNS (rkube-dns) behind the `kube-dns` Service.

use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::network::PodNetwork;
use crate::run::Parts;
use crate::Result;

/// The service flags as given (defaults filled in by the CLI).
#[derive(Clone, Debug)]
pub struct ServicesFlags {
    /// `--proxy-mode iptables|nftables|ipvs`.
    pub proxy_mode: String,
    /// `--disable-proxy`: no service proxy on this node.
    pub disable_proxy: bool,
    /// `--disable-dns`: no cluster DNS on this node.
    pub disable_dns: bool,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// `--nodeport-addresses` (CIDRs; empty: every node address).
    pub nodeport_addresses: Vec<String>,
    /// `--ipvs-scheduler` (rr, lc, sh, ...).
    pub ipvs_scheduler: String,
    /// `--proxy-min-sync-period` in seconds (upstream's `--iptables-min-sync-period`, default 1).
    pub min_sync_period_secs: f64,
    /// `--proxy-sync-period` in seconds (default 30).
    pub sync_period_secs: f64,
    /// `--proxy-metrics-port` (upstream's 10249; 0 disables).
    pub proxy_metrics_port: u16,
}

impl Default for ServicesFlags {
    /// The CLI's defaults.
    fn default() -> Self {
        ServicesFlags {
            proxy_mode: "iptables".into(),
            disable_proxy: false,
            disable_dns: false,
            masquerade_all: false,
            nodeport_addresses: Vec::new(),
            ipvs_scheduler: "rr".into(),
            min_sync_period_secs: 1.0,
            sync_period_secs: 30.0,
            proxy_metrics_port: 10249,
        }
    }
}

/// The validated service configuration.
#[derive(Clone, Debug)]
pub struct ServicesConfig {
    /// The flags, checked.
    pub flags: ServicesFlags,
}

impl ServicesConfig {
    /// Validates `flags`, pushing every problem (one line each, naming the flag and the fix) onto `problems`.
    pub fn from_flags(flags: &ServicesFlags, problems: &mut Vec<String>) -> ServicesConfig {
        let _ = problems;
        ServicesConfig { flags: flags.clone() }
    }
}

/// Starts the proxy and the DNS (each as a part, stopping on `parts_stop`) and returns once both are ready.
pub(crate) async fn start(
    config: &AgentConfig,
    client: &kube::Client,
    network: &PodNetwork,
    parts: &mut Parts,
    parts_stop: watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    let _ = (client, network, parts, parts_stop, stop);
    if config.services.flags.disable_proxy && config.services.flags.disable_dns {
        return Ok(());
    }
    todo!("issue 7: the service proxy and cluster DNS in the agent")
}
