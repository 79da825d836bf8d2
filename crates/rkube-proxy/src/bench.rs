//! The proxy benchmark (`rkube bench proxy`): builds N services × M endpoints, then times a full sync and a
//! one-endpoint change with each backend, applied for real through `exec` (a network-namespace prefix).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::exec::Exec;
use crate::iptables::RuleOptions;
use crate::metrics::Metrics;
use crate::model::{Endpoint, Protocol, ProxyState, ServicePort, ServicePortName};
use crate::proxier::Proxier;
use crate::{Error, ProxyMode};

/// One backend's timings.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// iptables or nftables.
    pub mode: &'static str,
    /// Services in the state.
    pub services: usize,
    /// Endpoints per service.
    pub endpoints: usize,
    /// Render + apply of everything.
    pub full_sync: Duration,
    /// Bytes applied by the full sync.
    pub full_bytes: usize,
    /// Render + apply after one endpoint changed.
    pub one_endpoint: Duration,
    /// Bytes applied by that partial sync.
    pub partial_bytes: usize,
}

/// A synthetic state: `services` ClusterIP services (10.96.0.0/12 style addresses) × `endpoints` each.
pub fn synthetic_state(services: usize, endpoints: usize) -> ProxyState {
    let mut st = ProxyState { services: BTreeMap::new(), endpoints: BTreeMap::new() };
    for i in 0..services {
        let name = ServicePortName {
            namespace: "bench".into(),
            name: format!("svc-{i}"),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i as u32 + 1);
        st.services.insert(
            name.clone(),
            ServicePort {
                cluster_ip: ip,
                port: 80,
                node_port: 0,
                external_ips: vec![],
                load_balancer_ips: vec![],
                load_balancer_source_ranges: vec![],
                affinity_seconds: None,
                internal_local: false,
                external_local: false,
            },
        );
        let eps = (0..endpoints)
            .map(|j| Endpoint {
                ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 30, 0, 0)) + (i * endpoints + j) as u32 + 1),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                local: false,
            })
            .collect();
        st.endpoints.insert(name, eps);
    }
    st
}

/// A network namespace made for a benchmark run, deleted on drop (rules never touch the host's tables).
#[derive(Debug)]
pub struct BenchNetns {
    name: String,
}

impl BenchNetns {
    /// Creates `ip netns add NAME`.
    pub fn create(name: &str) -> Result<BenchNetns, Error> {
        let status = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .map_err(|source| Error::Spawn { what: format!("ip netns add {name}"), source })?;
        if !status.success() {
            return Err(Error::Tool {
                what: format!("ip netns add {name}"),
                status: status.to_string(),
                stderr: String::new(),
            });
        }
        Ok(BenchNetns { name: name.to_string() })
    }

    /// An `Exec` running tools inside this namespace.
    pub fn exec(&self) -> Exec {
        Exec { prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.name.clone()] }
    }
}

impl Drop for BenchNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// `rkube bench proxy`: for each size, iptables then nftables, each in a fresh namespace of its own.
pub async fn run_all(sizes: &[usize], endpoints: usize) -> Result<Vec<BenchResult>, Error> {
    let mut out = Vec::new();
    for &n in sizes {
        for mode in [ProxyMode::Iptables, ProxyMode::Nftables] {
            let ns = BenchNetns::create(&format!("rkp-bench-{}-{n}-{:?}", std::process::id(), mode).to_lowercase())?;
            out.push(run(mode, ns.exec(), n, endpoints).await?);
        }
    }
    Ok(out)
}

/// [`run_all`] with each backend run bounded by `limit`: a run that takes longer is stopped (its tool killed, its
/// namespace deleted) and reported as `Err((mode, services, message))`, so one pathological backend does not
/// hide the others' figures.
pub async fn run_all_within(
    sizes: &[usize],
    endpoints: usize,
    limit: Duration,
) -> Result<Vec<Result<BenchResult, (&'static str, usize, String)>>, Error> {
    let mut out = Vec::new();
    for &n in sizes {
        for (mode, name) in [(ProxyMode::Iptables, "iptables"), (ProxyMode::Nftables, "nftables")] {
            let ns = BenchNetns::create(&format!("rkp-bench-{}-{n}-{name}", std::process::id()))?;
            // On timeout the run's future is dropped: its tool is killed (kill_on_drop), then the namespace goes.
            let r = match tokio::time::timeout(limit, run(mode, ns.exec(), n, endpoints)).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err((name, n, e.to_string())),
                Err(_) => Err((name, n, format!("did not finish within {} s", limit.as_secs()))),
            };
            drop(ns);
            out.push(r);
        }
    }
    Ok(out)
}

/// Times a full sync and a one-endpoint change of `services` × `endpoints` in `mode` through `exec`.
pub async fn run(mode: ProxyMode, exec: Exec, services: usize, endpoints: usize) -> Result<BenchResult, Error> {
    let opts = RuleOptions { cluster_cidr: Some("172.30.0.0/16".into()), ..RuleOptions::default() };
    let metrics = Arc::new(Metrics::default());
    let (mut p, name) = match mode {
        ProxyMode::Nftables => (Proxier::nftables(opts, exec, metrics), "nftables"),
        _ => (Proxier::iptables(opts, exec, metrics), "iptables"),
    };
    let mut st = synthetic_state(services, endpoints);
    let full = p.sync(&st, true).await?;
    if let Some(eps) = st.endpoints.values_mut().next()
        && let Some(first) = eps.first_mut()
    {
        first.ip = Ipv4Addr::new(172, 31, 255, 254);
        eps.sort();
    }
    let partial = p.sync(&st, false).await?;
    Ok(BenchResult {
        mode: name,
        services,
        endpoints,
        full_sync: full.duration,
        full_bytes: full.bytes,
        one_endpoint: partial.duration,
        partial_bytes: partial.bytes,
    })
}

/// This process's resident set in KiB (`VmRSS` of /proc/self/status; 0 where unavailable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The proxy's memory at `services` × `endpoints`: the RSS growth of this process while it holds the model,
/// the applied state and the rendered rules of a full nftables sync (piped to a no-op instead of `nft`: the
/// tool's own memory is not the proxy's). Call it first in a fresh process: freed memory is not given back to
/// the system, so earlier work would hide the growth. The reflector caches of a live proxy come on top.
/// Returns (RSS before, RSS while holding), KiB.
pub async fn memory(services: usize, endpoints: usize) -> Result<(u64, u64), Error> {
    let before = rss_kib();
    let opts = RuleOptions { cluster_cidr: Some("172.30.0.0/16".into()), ..RuleOptions::default() };
    let sink = Exec { prefix: vec!["sh".into(), "-c".into(), "cat >/dev/null".into(), "sink".into()] };
    let mut p = Proxier::nftables(opts, sink, Arc::new(Metrics::default()));
    let st = synthetic_state(services, endpoints);
    p.sync(&st, true).await?;
    let held = rss_kib();
    drop((p, st));
    Ok((before, held))
}
