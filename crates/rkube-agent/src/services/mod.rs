//! Services on the node (issue 7): the service proxy (rkube-proxy: iptables, nftables or ipvs) and the
//! cluster DNS (rkube-dns) behind the `kube-dns` Service, both run as parts of the agent.

mod dns;
mod kube_dns;
mod proxy;

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::sync::watch;

use crate::Result;
use crate::config::AgentConfig;
use crate::network::PodNetwork;
use crate::run::Parts;

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
    /// `--ipvs-sync-period` (upstream's default 30 s): the full-resync interval in ipvs mode.
    pub ipvs_sync_period: Duration,
    /// `--ipvs-min-sync-period` (upstream's default 0: every change syncs at once) in ipvs mode.
    pub ipvs_min_sync_period: Duration,
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
            ipvs_sync_period: Duration::from_secs(30),
            ipvs_min_sync_period: Duration::ZERO,
        }
    }
}

/// An IPv4 network from `--nodeport-addresses`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The network address as written.
    pub addr: Ipv4Addr,
    /// Its prefix length (0–32).
    pub prefix: u8,
}

impl Ipv4Cidr {
    fn parse(s: &str) -> Option<Ipv4Cidr> {
        let (addr, prefix) = s.trim().split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        Some(Ipv4Cidr { addr: addr.parse().ok()?, prefix })
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// The validated service configuration.
#[derive(Clone, Debug)]
pub struct ServicesConfig {
    /// The flags, checked.
    pub flags: ServicesFlags,
    /// `--proxy-mode`, parsed.
    pub mode: rkube_proxy::ProxyMode,
    /// `--nodeport-addresses`, parsed (empty: every address of the node).
    pub nodeport_cidrs: Vec<Ipv4Cidr>,
    /// `--proxy-min-sync-period` (`--ipvs-min-sync-period` in ipvs mode, as upstream's ipvs proxier).
    pub min_sync_period: Duration,
    /// `--proxy-sync-period` (`--ipvs-sync-period` in ipvs mode).
    pub sync_period: Duration,
}

impl ServicesConfig {
    /// Validates `flags`, pushing every problem (one line each, naming the flag and the fix) onto `problems`.
    pub fn from_flags(flags: &ServicesFlags, problems: &mut Vec<String>) -> ServicesConfig {
        let mode = match flags.proxy_mode.parse::<rkube_proxy::ProxyMode>() {
            Ok(m) if !flags.proxy_mode.is_empty() => m,
            _ => {
                problems.push(format!(
                    "--proxy-mode {:?} is not a proxy mode: use iptables, nftables or ipvs",
                    flags.proxy_mode
                ));
                rkube_proxy::ProxyMode::default()
            }
        };
        let mut nodeport_cidrs = Vec::new();
        for a in &flags.nodeport_addresses {
            match Ipv4Cidr::parse(a) {
                Some(c) => nodeport_cidrs.push(c),
                None => problems.push(format!(
                    "--nodeport-addresses {a:?} is not an IPv4 CIDR (such as 192.168.1.0/24 or 10.0.0.5/32)"
                )),
            }
        }
        let period = |flag: &str, secs: f64, problems: &mut Vec<String>| match Duration::try_from_secs_f64(secs) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                problems.push(format!("--{flag} {secs} must be a number of seconds greater than 0"));
                Duration::from_secs(1)
            }
        };
        let mut min_sync_period = period("proxy-min-sync-period", flags.min_sync_period_secs, problems);
        let mut sync_period = period("proxy-sync-period", flags.sync_period_secs, problems);
        if min_sync_period > sync_period {
            problems.push(format!(
                "--proxy-sync-period {} must be greater than or equal to --proxy-min-sync-period {}",
                flags.sync_period_secs, flags.min_sync_period_secs
            ));
        }
        if flags.ipvs_scheduler.is_empty() {
            problems.push("--ipvs-scheduler must not be empty (upstream's default is rr)".into());
        } else if let Err(e) = rkube_proxy::ipvs::check_scheduler(&flags.ipvs_scheduler) {
            problems.push(e);
        }
        let (ipvs_min, ipvs_sync) = (flags.ipvs_min_sync_period, flags.ipvs_sync_period);
        if ipvs_sync.is_zero() {
            problems.push("--ipvs-sync-period 0s must be greater than 0 (such as 30s)".into());
        } else if ipvs_min > ipvs_sync {
            problems.push(format!(
                "--ipvs-sync-period {ipvs_sync:?} must be greater than or equal to --ipvs-min-sync-period {ipvs_min:?}"
            ));
        }
        if mode == rkube_proxy::ProxyMode::Ipvs {
            (min_sync_period, sync_period) = (ipvs_min, ipvs_sync);
        }
        ServicesConfig { flags: flags.clone(), mode, nodeport_cidrs, min_sync_period, sync_period }
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
    if !config.services.flags.disable_proxy {
        let ready = proxy::spawn(config, client, network, parts, parts_stop.clone())?;
        crate::run::wait_part(parts, ready, stop, "the service proxy").await?;
        tracing::info!(mode = %config.services.flags.proxy_mode, "the service proxy is up");
    }
    if !config.services.flags.disable_dns {
        let ready = dns::spawn(config, client, parts, parts_stop)?;
        crate::run::wait_part(parts, ready, stop, "the cluster DNS").await?;
        tracing::info!(listen = %config.node_ip, "the cluster DNS is up");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
