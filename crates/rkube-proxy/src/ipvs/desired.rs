//! The IPVS table a `ProxyState` calls for (pure): one virtual server per service address — the cluster IP,
//! every node address for a NodePort, each externalIP and LoadBalancer ingress IP — with the ready endpoints
//! as real servers, and the service addresses upstream binds to the `kube-ipvs0` dummy device.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use crate::model::{Endpoint, Protocol, ProxyState};

/// The dummy device upstream's ipvs mode puts the service addresses on (so the node accepts their packets).
pub const DUMMY_DEVICE: &str = "kube-ipvs0";
/// `--ipvs-scheduler` when unset, as upstream.
pub const DEFAULT_SCHEDULER: &str = "rr";
/// `IP_VS_SVC_F_PERSISTENT` from `include/uapi/linux/ip_vs.h`: sessionAffinity ClientIP.
pub const FLAG_PERSISTENT: u32 = 0x0001;
/// Weight of a real server (upstream gives every endpoint weight 1).
pub const DEFAULT_WEIGHT: u32 = 1;

/// A virtual server's identity (what the kernel keys services on, besides the address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtualServer {
    /// The transport protocol.
    pub protocol: Protocol,
    /// The virtual address.
    pub addr: Ipv4Addr,
    /// The virtual port.
    pub port: u16,
}

impl fmt::Display for VirtualServer {
    /// `tcp 10.0.0.1:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.protocol.as_str(), self.addr, self.port)
    }
}

/// The settable part of a virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAttrs {
    /// The scheduler's name (`rr`, `lc`, `sh`, ...).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout in seconds (0 unless persistent).
    pub timeout: u32,
}

/// A real server's identity within its virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealServer {
    /// The endpoint's address.
    pub addr: Ipv4Addr,
    /// The endpoint's port.
    pub port: u16,
}

impl fmt::Display for RealServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// One virtual server's settings and its real servers with their weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsEntry {
    /// Scheduler, flags, timeout.
    pub attrs: ServiceAttrs,
    /// Real servers and weights.
    pub dests: BTreeMap<RealServer, u32>,
}

/// A whole IPVS table (what was applied, or what should be).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsTable {
    /// Virtual servers, sorted so the generated messages are stable.
    pub services: BTreeMap<VirtualServer, VsEntry>,
}

/// What ipvs mode should program for a state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The IPVS table.
    pub table: IpvsTable,
    /// Addresses that belong on `kube-ipvs0`: cluster IPs, externalIPs and LoadBalancer IPs (node
    /// addresses are already local, so NodePorts need none).
    pub bind_addrs: BTreeSet<Ipv4Addr>,
}

fn entry(attrs: &ServiceAttrs, eps: &[Endpoint]) -> VsEntry {
    VsEntry {
        attrs: attrs.clone(),
        dests: eps.iter().map(|e| (RealServer { addr: e.ip, port: e.port }, DEFAULT_WEIGHT)).collect(),
    }
}

/// The table and device addresses for `state`: `scheduler` is `--ipvs-scheduler` (empty means `rr`),
/// `node_addrs` the addresses NodePorts listen on (`--nodeport-addresses` resolved by the caller).
pub fn desired(state: &ProxyState, scheduler: &str, node_addrs: &[Ipv4Addr]) -> Desired {
    let scheduler = if scheduler.is_empty() { DEFAULT_SCHEDULER } else { scheduler };
    let mut out = Desired::default();
    for (name, svc) in &state.services {
        let attrs = ServiceAttrs {
            scheduler: scheduler.to_string(),
            flags: if svc.affinity_seconds.is_some() { FLAG_PERSISTENT } else { 0 },
            timeout: svc.affinity_seconds.unwrap_or(0),
        };
        let cat = state.categorize(name, svc);
        // Traffic policy Local narrows a path to this node's endpoints, as in the other modes.
        let internal = if svc.internal_local { &cat.local } else { &cat.cluster };
        let external = if svc.external_local { &cat.local } else { &cat.cluster };
        let vs = |addr| VirtualServer { protocol: name.protocol, addr, port: svc.port };
        out.table.services.insert(vs(svc.cluster_ip), entry(&attrs, internal));
        out.bind_addrs.insert(svc.cluster_ip);
        for &ip in svc.external_ips.iter().chain(&svc.load_balancer_ips) {
            out.table.services.insert(vs(ip), entry(&attrs, external));
            out.bind_addrs.insert(ip);
        }
        if svc.node_port != 0 {
            for &addr in node_addrs {
                let key = VirtualServer { protocol: name.protocol, addr, port: svc.node_port };
                out.table.services.insert(key, entry(&attrs, external));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ep, spn, state, svc};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cluster_ip_with_affinity_becomes_a_persistent_virtual_server() {
        let mut s = svc("10.96.0.10", 80);
        s.affinity_seconds = Some(600);
        let st =
            state(vec![(spn("ns", "web", ""), s, vec![ep("10.244.1.2", 8080, false), ep("10.244.2.3", 8080, false)])]);
        let d = desired(&st, "", &[]);
        assert_eq!(d.bind_addrs.iter().copied().collect::<Vec<_>>(), vec![ip("10.96.0.10")]);
        let (vs, e) = d.table.services.iter().next().unwrap();
        assert_eq!(*vs, VirtualServer { protocol: Protocol::Tcp, addr: ip("10.96.0.10"), port: 80 });
        assert_eq!(e.attrs, ServiceAttrs { scheduler: "rr".into(), flags: FLAG_PERSISTENT, timeout: 600 });
        assert_eq!(e.dests.len(), 2);
        assert_eq!(e.dests[&RealServer { addr: ip("10.244.2.3"), port: 8080 }], 1);
    }

    #[test]
    fn node_port_external_and_lb_ips_each_get_a_virtual_server() {
        let mut s = svc("10.96.0.20", 80);
        s.node_port = 30080;
        s.external_ips = vec![ip("203.0.113.5")];
        s.load_balancer_ips = vec![ip("198.51.100.7")];
        let st = state(vec![(spn("ns", "np", ""), s, vec![ep("10.244.1.5", 80, true)])]);
        let d = desired(&st, "lc", &[ip("192.168.1.10"), ip("192.168.1.11")]);
        let keys: Vec<String> = d.table.services.keys().map(|k| k.to_string()).collect();
        assert_eq!(
            keys,
            vec![
                "tcp 10.96.0.20:80",
                "tcp 192.168.1.10:30080",
                "tcp 192.168.1.11:30080",
                "tcp 198.51.100.7:80",
                "tcp 203.0.113.5:80"
            ]
        );
        assert!(d.table.services.values().all(|e| e.attrs.scheduler == "lc" && e.dests.len() == 1));
        // Node addresses are not bound to the dummy device; service addresses are.
        let bound: Vec<String> = d.bind_addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(bound, vec!["10.96.0.20", "198.51.100.7", "203.0.113.5"]);
    }

    #[test]
    fn external_local_uses_only_local_endpoints_on_external_paths() {
        let mut s = svc("10.96.0.30", 80);
        s.node_port = 30081;
        s.external_local = true;
        let st = state(vec![(spn("ns", "loc", ""), s, vec![ep("10.244.1.5", 80, true), ep("10.244.2.6", 80, false)])]);
        let d = desired(&st, "rr", &[ip("192.168.1.10")]);
        let cluster = &d.table.services[&VirtualServer { protocol: Protocol::Tcp, addr: ip("10.96.0.30"), port: 80 }];
        let node = &d.table.services[&VirtualServer { protocol: Protocol::Tcp, addr: ip("192.168.1.10"), port: 30081 }];
        assert_eq!(cluster.dests.len(), 2);
        assert_eq!(node.dests.keys().map(|r| r.to_string()).collect::<Vec<_>>(), vec!["10.244.1.5:80"]);
    }

    #[test]
    fn unready_endpoints_are_not_real_servers() {
        let mut unready = ep("10.244.1.9", 80, false);
        unready.ready = false;
        unready.serving = false;
        let st = state(vec![(spn("ns", "u", ""), svc("10.96.0.40", 80), vec![unready, ep("10.244.1.8", 80, false)])]);
        let d = desired(&st, "rr", &[]);
        let e = d.table.services.values().next().unwrap();
        assert_eq!(e.dests.keys().map(|r| r.to_string()).collect::<Vec<_>>(), vec!["10.244.1.8:80"]);
    }
}
