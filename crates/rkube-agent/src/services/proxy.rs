//! The service proxy as a part of the agent: rkube-proxy with the node's name, the cluster's pod network and
//! `--nodeport-addresses` resolved to this node's addresses. The agent runs in its node's network namespace,
//! so the rule tools run without a prefix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::sync::{oneshot, watch};

use super::Ipv4Cidr;
use crate::config::AgentConfig;
use crate::network::PodNetwork;
use crate::run::Parts;
use crate::{Error, Result};

/// Spawns the proxy as a part; the receiver fires after its first successful sync.
pub(super) fn spawn(
    config: &AgentConfig,
    client: &kube::Client,
    network: &PodNetwork,
    parts: &mut Parts,
    stop: watch::Receiver<bool>,
) -> Result<oneshot::Receiver<()>> {
    let s = &config.services;
    let nodeport_addresses = resolve_nodeport_addresses(&s.nodeport_cidrs, &local_ipv4())?;
    let proxy = rkube_proxy::ProxyConfig {
        mode: s.mode,
        hostname: config.node_name.clone(),
        cluster_cidr: Some(network.cluster_cidr.clone()),
        masquerade_all: s.flags.masquerade_all,
        nodeport_addresses,
        min_sync_period: s.min_sync_period,
        sync_period: s.sync_period,
        ipvs_scheduler: s.flags.ipvs_scheduler.clone(),
        // Upstream's default metrics bind address is loopback too (127.0.0.1:10249).
        metrics_addr: (s.flags.proxy_metrics_port != 0)
            .then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, s.flags.proxy_metrics_port))),
        exec: rkube_proxy::Exec::default(),
    };
    let (tx, rx) = oneshot::channel();
    let client = client.clone();
    parts.spawn(async move {
        let r = rkube_proxy::run(proxy, client, stop, tx).await;
        ("the service proxy", r.map_err(|e| Error::Services(format!("the service proxy failed: {e}"))))
    });
    Ok(rx)
}

/// This namespace's IPv4 addresses (loopback included: upstream's NodePorts answer on 127.0.0.1 too when the
/// flag's CIDRs contain it).
fn local_ipv4() -> Vec<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The node addresses inside `cidrs` (none given: empty, which the proxy takes as every address). CIDRs that
/// match none of the node's addresses would silently turn every NodePort off: that is an error.
fn resolve_nodeport_addresses(cidrs: &[Ipv4Cidr], local: &[Ipv4Addr]) -> Result<Vec<Ipv4Addr>> {
    if cidrs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<Ipv4Addr> = local.iter().copied().filter(|ip| cidrs.iter().any(|c| c.contains(*ip))).collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        let wanted: Vec<String> = cidrs.iter().map(|c| format!("{}/{}", c.addr, c.prefix)).collect();
        let have: Vec<String> = local.iter().map(Ipv4Addr::to_string).collect();
        return Err(Error::Services(format!(
            "--nodeport-addresses {} matches none of this node's addresses ({}): NodePorts would answer nowhere",
            wanted.join(","),
            have.join(", ")
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodeport_addresses_resolve_to_the_node_addresses_inside_the_cidrs() {
        let cidr = |s: &str| {
            let (a, p) = s.split_once('/').unwrap();
            Ipv4Cidr { addr: a.parse().unwrap(), prefix: p.parse().unwrap() }
        };
        let local: Vec<Ipv4Addr> =
            ["127.0.0.1", "192.168.1.5", "10.0.0.7"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(resolve_nodeport_addresses(&[], &local).unwrap(), Vec::<Ipv4Addr>::new());
        assert_eq!(
            resolve_nodeport_addresses(&[cidr("192.168.0.0/16"), cidr("10.0.0.7/32")], &local).unwrap(),
            vec!["10.0.0.7".parse::<Ipv4Addr>().unwrap(), "192.168.1.5".parse().unwrap()]
        );
        let err = resolve_nodeport_addresses(&[cidr("172.16.0.0/12")], &local).unwrap_err().to_string();
        assert!(err.contains("--nodeport-addresses 172.16.0.0/12 matches none"), "{err}");
        assert!(err.contains("192.168.1.5"), "{err}");
    }
}
