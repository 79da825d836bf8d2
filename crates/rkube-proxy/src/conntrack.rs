//! Stale UDP conntrack entries: when a UDP endpoint goes away, entries DNATed to it would keep steering
//! datagrams to a dead pod, and when a UDP service gains its first endpoint, entries created while it was
//! rejecting would keep failing; both are deleted with `conntrack -D` after the rules are in place.

use std::collections::BTreeSet;

use crate::model::{Protocol, ProxyState};

/// `conntrack` argument lists to run after moving from `old` to `new`.
pub fn stale_udp_flushes(old: &ProxyState, new: &ProxyState) -> Vec<Vec<String>> {
    let mut out = BTreeSet::new();
    for (name, svc) in old.services.iter().filter(|(n, _)| n.protocol == Protocol::Udp) {
        let before: BTreeSet<_> = old.categorize(name, svc).reachable.into_iter().map(|e| e.ip).collect();
        let after: BTreeSet<_> = match new.services.get(name) {
            Some(s) => new.categorize(name, s).reachable.into_iter().map(|e| e.ip).collect(),
            None => BTreeSet::new(),
        };
        for gone in before.difference(&after) {
            for vip in std::iter::once(svc.cluster_ip)
                .chain(svc.external_ips.iter().copied())
                .chain(svc.load_balancer_ips.iter().copied())
            {
                out.insert(args(&["-D", "-p", "udp", "--orig-dst", &vip.to_string(), "--dst-nat", &gone.to_string()]));
            }
        }
    }
    for (name, svc) in new.services.iter().filter(|(n, _)| n.protocol == Protocol::Udp) {
        let had = old.services.get(name).map(|s| old.categorize(name, s).has_endpoints).unwrap_or(false);
        if !had && new.categorize(name, svc).has_endpoints {
            out.insert(args(&[
                "-D",
                "-p",
                "udp",
                "--orig-dst",
                &svc.cluster_ip.to_string(),
                "--orig-port-dst",
                &svc.port.to_string(),
            ]));
            if svc.node_port != 0 {
                out.insert(args(&["-D", "-p", "udp", "--orig-port-dst", &svc.node_port.to_string()]));
            }
        }
    }
    out.into_iter().collect()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
