//! The node's name and address, found the way kubelet and k3s find them: the hostname, and the IPv4
//! address of the interface that holds the default route.

use std::net::{IpAddr, Ipv4Addr};

/// The hostname, lowercased (node names must be DNS names).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The interface of the IPv4 default route, from /proc/net/route.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() > 2 && cols[1] == "00000000").then(|| cols[0].to_owned())
    })
}

/// The IPv4 address of the default-route interface, else the first non-loopback one, else 127.0.0.1.
pub(crate) fn default_ipv4() -> IpAddr {
    let addrs = if_addrs::get_if_addrs().unwrap_or_default();
    let v4 = |i: &if_addrs::Interface| match i.ip() {
        IpAddr::V4(a) if !a.is_loopback() => Some(IpAddr::V4(a)),
        _ => None,
    };
    if let Some(iface) = default_route_interface()
        && let Some(ip) = addrs.iter().filter(|i| i.name == iface).find_map(v4)
    {
        return ip;
    }
    addrs.iter().find_map(v4).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
