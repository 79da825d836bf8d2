//! The cluster's network: its own namespace holding the bridge, and a namespace per node with a veth `eth0`
//! on that bridge. Links are made inside the cluster namespace with the node's end created directly in the
//! node's namespace, so no link ever appears in the host's. The bridge namespace has no way out.

use crate::layout::{BRIDGE, Layout};
use crate::process::run;
use crate::{Error, Result};

/// The network namespaces that exist now (`ip netns list`, names only).
pub fn namespaces() -> Result<Vec<String>> {
    let out = run("ip", &["netns", "list"])?;
    Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

/// Creates the cluster namespace and its bridge (with the gateway's address and one per etcd member, at least
/// member 1's).
pub fn create_cluster(layout: &Layout, etcd_members: u32) -> Result<()> {
    let ns = layout.cluster_netns();
    run("ip", &["netns", "add", &ns])?;
    let gateway = format!("{}/24", Layout::bridge_ip());
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["link", "add", BRIDGE, "type", "bridge"],
        vec!["addr", "add", &gateway, "dev", BRIDGE],
    ] {
        in_ns(&ns, &args)?;
    }
    for m in 1..=etcd_members.max(1) {
        in_ns(&ns, &["addr", "add", &format!("{}/24", Layout::etcd_member_ip(m)), "dev", BRIDGE])?;
    }
    in_ns(&ns, &["link", "set", BRIDGE, "up"])
}

/// Creates node `i`'s namespace: `eth0` on the cluster bridge at 192.168.77.(10+i)/24, lo up, and a default
/// route via the bridge's address.
pub fn create_node(layout: &Layout, i: u32) -> Result<()> {
    let cluster = layout.cluster_netns();
    let node = layout.node_netns(i);
    run("ip", &["netns", "add", &node])?;
    let port = format!("v{i}");
    in_ns(&cluster, &["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node])?;
    in_ns(&cluster, &["link", "set", &port, "master", BRIDGE])?;
    in_ns(&cluster, &["link", "set", &port, "up"])?;
    let addr = format!("{}/24", Layout::node_ip(i));
    let gateway = Layout::bridge_ip().to_string();
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["addr", "add", &addr, "dev", "eth0"],
        vec!["link", "set", "eth0", "up"],
        vec!["route", "add", "default", "via", &gateway],
    ] {
        in_ns(&node, &args)?;
    }
    Ok(())
}

/// Deletes every namespace of the cluster that exists (nodes first, then the cluster's own); the links and
/// the iptables rules inside go with them. Returns those it deleted.
pub fn delete_all(layout: &Layout) -> Result<Vec<String>> {
    let mut doomed: Vec<String> = namespaces()?.into_iter().filter(|n| layout.is_node_netns(n)).collect();
    doomed.sort();
    if namespaces()?.contains(&layout.cluster_netns()) {
        doomed.push(layout.cluster_netns());
    }
    let mut failures = Vec::new();
    for ns in &doomed {
        if let Err(e) = run("ip", &["netns", "delete", ns]) {
            failures.push(e.to_string());
        }
    }
    if !failures.is_empty() {
        return Err(Error::Invalid(format!("deleting namespaces: {}", failures.join("; "))));
    }
    Ok(doomed)
}

/// `ip -n <ns> <args>`.
fn in_ns(ns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all).map(|_| ())
}
