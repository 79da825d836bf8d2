//! rkube-proxy: the service proxy (upstream kube-proxy). Services and EndpointSlices are watched with
//! kube-rs and reduced to one model (`model`); a proxier (`proxier`) renders it as upstream's iptables
//! (`iptables`) or nftables (`nftables`) layout — chain names hashed exactly as upstream's — and applies it
//! in one atomic `iptables-restore --noflush` / `nft -f` run per sync, rewriting only what changed, with a
//! full rewrite every sync period. ipvs mode (`ipvs`) programs virtual/real servers over generic netlink, the
//! service addresses on `kube-ipvs0` and upstream's companion iptables rules; this kernel has no ip_vs, so it
//! is tested against a fake kernel and refuses to start here. `/healthz` and `/metrics` are served by
//! `metrics`; `bench` times the iptables and nftables backends.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bench;
pub mod conntrack;
pub mod exec;
pub mod iptables;
pub mod ipvs;
pub mod metrics;
pub mod model;
pub mod names;
pub mod nftables;
pub mod proxier;
mod watch;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod testutil;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use exec::Exec;
pub use iptables::RuleOptions;
pub use metrics::Metrics;
pub use model::{Endpoint, Protocol, ProxyState, ServicePort, ServicePortName};
pub use proxier::{Proxier, SyncReport};
pub use watch::{SYNC_FAILED_REASON, run};

/// `--proxy-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// iptables (the default).
    #[default]
    Iptables,
    /// nftables.
    Nftables,
    /// ipvs (refuses to start on a kernel without the ip_vs modules).
    Ipvs,
}

impl std::str::FromStr for ProxyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<ProxyMode, String> {
        match s {
            "" | "iptables" => Ok(ProxyMode::Iptables),
            "nftables" => Ok(ProxyMode::Nftables),
            "ipvs" => Ok(ProxyMode::Ipvs),
            other => Err(format!("unknown proxy mode {other:?} (iptables, nftables or ipvs)")),
        }
    }
}

/// The proxy's configuration (upstream's flags).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `--proxy-mode`.
    pub mode: ProxyMode,
    /// `--hostname-override`: the node name that marks endpoints local.
    pub hostname: String,
    /// `--cluster-cidr`: off-cluster sources to cluster IPs are masqueraded.
    pub cluster_cidr: Option<String>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// `--nodeport-addresses`, resolved by the caller to this node's addresses; empty means all local ones.
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// `--min-sync-period` (default 1 s): changes are applied at most this often (`--ipvs-min-sync-period` in
    /// ipvs mode, default 0).
    pub min_sync_period: Duration,
    /// `--sync-period` (default 30 s): interval of full resyncs. In ipvs mode the caller passes
    /// `--ipvs-sync-period` here, as upstream's ipvs proxier uses its own pair.
    pub sync_period: Duration,
    /// `--ipvs-scheduler` (rr when empty; one of `ipvs::SCHEDULERS`, refused at start otherwise).
    pub ipvs_scheduler: String,
    /// `--metrics-bind-address` (serves `/healthz` and `/metrics`); `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// How the rule tools are run (a prefix such as `ip netns exec NS` for tests).
    pub exec: Exec,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            mode: ProxyMode::Iptables,
            hostname: String::new(),
            cluster_cidr: None,
            masquerade_all: false,
            nodeport_addresses: Vec::new(),
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
            ipvs_scheduler: ipvs::desired::DEFAULT_SCHEDULER.to_string(),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 10249))),
            exec: Exec::default(),
        }
    }
}

impl ProxyConfig {
    /// The rule options both renderers take.
    pub fn rule_options(&self) -> RuleOptions {
        RuleOptions {
            cluster_cidr: self.cluster_cidr.clone(),
            masquerade_all: self.masquerade_all,
            nodeport_addresses: self.nodeport_addresses.clone(),
        }
    }
}

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool could not be started or fed.
    #[error("running {what}: {source}")]
    Spawn {
        /// The command line.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A tool exited non-zero.
    #[error("{what} failed ({status}): {stderr}")]
    Tool {
        /// The command line.
        what: String,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// ipvs mode on a kernel without the modules (or another ipvs-mode failure with its own message).
    #[error("{0}")]
    Ipvs(String),
    /// A netlink exchange failed (socket, timeout, or the kernel refusing a read).
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The I/O error or the kernel's errno.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused one IPVS change.
    #[error("IPVS {op}: {source}")]
    IpvsOp {
        /// The change, as the transcript spells it.
        op: String,
        /// The kernel's errno.
        #[source]
        source: std::io::Error,
    },
    /// Some changes of an ipvs sync failed (the others were applied and are remembered).
    #[error("{} of the IPVS sync's changes failed: {}", .0.len(), .0.join("; "))]
    IpvsPartial(Vec<String>),
    /// The metrics address could not be bound.
    #[error("binding the metrics address {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
