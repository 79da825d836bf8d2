//! nftables mode: one `nft -f` transaction per sync in table `ip kube-proxy`. A full sync (re)creates the
//! table's fixed skeleton, refills every map and rewrites every service chain; a partial sync adds and
//! deletes only the changed map elements and rewrites only changed chains. Stale chains are flushed and
//! deleted in the same transaction (upstream defers the delete for kernels before 6.2, which lag in noticing
//! that a deleted map element no longer references a chain; this proxy needs 6.2+ or retries next sync).

pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::iptables::RuleOptions;
use crate::model::ProxyState;
pub use render::{Element, ServiceObjects, render_service};

/// The table every object lives in.
pub const TABLE: &str = "ip kube-proxy";
/// The masquerade mark as upstream's nftables mode prints it (`%#08x`).
pub const MASQ_MARK: &str = "0x004000";
const MAPS: &[&str] =
    &["no-endpoint-services", "no-endpoint-nodeports", "firewall-ips", "service-ips", "service-nodeports"];

/// One rendered sync, not yet applied.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The `nft -f` input.
    pub text: String,
    /// State to record on success.
    state: Applied,
    /// Chains written by this sync.
    pub written: Vec<String>,
    /// Chains deleted by this sync.
    pub deleted: Vec<String>,
    /// Element commands (adds plus deletes) in this sync.
    pub element_ops: usize,
}

#[derive(Debug, Clone, Default)]
struct Applied {
    chains: BTreeMap<String, Vec<String>>,
    elements: BTreeSet<Element>,
    sets: BTreeMap<String, u32>,
}

/// Renders syncs, remembering what the last successful transaction left in the kernel.
#[derive(Debug, Default)]
pub struct Nftables {
    opts: RuleOptions,
    applied: Option<Applied>,
}

impl Nftables {
    /// A renderer with nothing applied yet (the first render replaces the whole table).
    pub fn new(opts: RuleOptions) -> Nftables {
        Nftables { opts, applied: None }
    }

    fn skeleton(&self, t: &mut String) {
        let _ = writeln!(t, "add table {TABLE} {{ comment \"rules for kube-proxy\" ; }}");
        // Numeric priorities (dstnat-10, dstnat, srcnat): nft before 1.0.7 accepts the symbolic
        // `dstnat` only on the prerouting hook.
        for (name, ty, hook, prio) in [
            ("filter-prerouting", "filter", "prerouting", "-110"),
            ("filter-input", "filter", "input", "-110"),
            ("filter-forward", "filter", "forward", "-110"),
            ("filter-output", "filter", "output", "-110"),
            ("nat-prerouting", "nat", "prerouting", "-100"),
            ("nat-output", "nat", "output", "-100"),
            ("nat-postrouting", "nat", "postrouting", "100"),
        ] {
            let _ = writeln!(t, "add chain {TABLE} {name} {{ type {ty} hook {hook} priority {prio} ; }}");
            let _ = writeln!(t, "flush chain {TABLE} {name}");
        }
        for c in ["endpoints-check", "firewall-check", "services", "masquerading", "mark-for-masquerade"] {
            let _ = writeln!(t, "add chain {TABLE} {c}\nflush chain {TABLE} {c}");
        }
        let _ = writeln!(
            t,
            "add chain {TABLE} reject-chain {{ comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }}"
        );
        let _ = writeln!(t, "flush chain {TABLE} reject-chain");
        let rules: Vec<(&str, String)> = vec![
            ("filter-input", "ct state new jump endpoints-check".into()),
            ("filter-forward", "ct state new jump endpoints-check".into()),
            ("filter-output", "ct state new jump endpoints-check".into()),
            ("filter-prerouting", "ct state new jump firewall-check".into()),
            ("filter-output", "ct state new jump firewall-check".into()),
            ("nat-output", "jump services".into()),
            ("nat-prerouting", "jump services".into()),
            ("nat-postrouting", "jump masquerading".into()),
            ("mark-for-masquerade", format!("mark set mark or {MASQ_MARK}")),
            ("masquerading", format!("mark and {MASQ_MARK} == 0 return")),
            ("masquerading", format!("mark set mark xor {MASQ_MARK}")),
            ("masquerading", "masquerade fully-random".into()),
            ("reject-chain", "reject".into()),
        ];
        let _ = writeln!(
            t,
            "add set {TABLE} nodeport-ips {{ type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }}"
        );
        let _ = writeln!(t, "flush set {TABLE} nodeport-ips");
        for ip in &self.opts.nodeport_addresses {
            let _ = writeln!(t, "add element {TABLE} nodeport-ips {{ {ip} }}");
        }
        for (map, ty, comment) in [
            (
                "no-endpoint-services",
                "ipv4_addr . inet_proto . inet_service",
                "vmap to drop or reject packets to services with no endpoints",
            ),
            (
                "no-endpoint-nodeports",
                "inet_proto . inet_service",
                "vmap to drop or reject packets to service nodeports with no endpoints",
            ),
            (
                "firewall-ips",
                "ipv4_addr . inet_proto . inet_service",
                "destinations that are subject to LoadBalancerSourceRanges",
            ),
            (
                "service-ips",
                "ipv4_addr . inet_proto . inet_service",
                "ClusterIP, ExternalIP and LoadBalancer IP traffic",
            ),
            ("service-nodeports", "inet_proto . inet_service", "NodePort traffic"),
        ] {
            let _ = writeln!(t, "add map {TABLE} {map} {{ type {ty} : verdict ; comment \"{comment}\" ; }}");
        }
        for (chain, rule) in rules {
            let _ = writeln!(t, "add rule {TABLE} {chain} {rule}");
        }
        let nodeport_match = if self.opts.nodeport_addresses.is_empty() {
            "fib daddr type local ip daddr != 127.0.0.0/8"
        } else {
            "ip daddr @nodeport-ips"
        };
        let _ = writeln!(
            t,
            "add rule {TABLE} endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services"
        );
        let _ = writeln!(
            t,
            "add rule {TABLE} endpoints-check {nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports"
        );
        let _ = writeln!(t, "add rule {TABLE} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips");
        let _ = writeln!(t, "add rule {TABLE} services ip daddr . meta l4proto . th dport vmap @service-ips");
        let _ =
            writeln!(t, "add rule {TABLE} services {nodeport_match} meta l4proto . th dport vmap @service-nodeports");
    }

    /// Renders `state`; `full` (or nothing applied yet) rebuilds everything, otherwise only differences.
    pub fn render(&self, state: &ProxyState, full: bool) -> Rendered {
        let mut next = Applied::default();
        let mut order = Vec::new();
        for (name, svc) in &state.services {
            let cat = state.categorize(name, svc);
            let o = render_service(name, svc, &cat, &self.opts);
            next.elements.extend(o.elements);
            next.sets.extend(o.sets);
            for (c, rules) in o.chains {
                order.push(c.clone());
                next.chains.insert(c, rules);
            }
        }
        let empty = Applied::default();
        let prev = self.applied.as_ref().unwrap_or(&empty);
        let full = full || self.applied.is_none();
        let mut t = String::with_capacity(4096 + next.chains.len() * 200);
        if self.applied.is_none() {
            // A fresh process owns the table: replacing it atomically drops leftovers of an earlier run.
            let _ = writeln!(t, "add table {TABLE}\ndelete table {TABLE}");
        }
        if full {
            self.skeleton(&mut t);
        }
        for (set, secs) in &next.sets {
            if prev.sets.get(set) != Some(secs) || full {
                let _ = writeln!(
                    t,
                    "add set {TABLE} {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {secs}s ; }}"
                );
            }
        }
        let written: Vec<String> =
            order.into_iter().filter(|c| full || prev.chains.get(c) != next.chains.get(c)).collect();
        for c in &written {
            let _ = writeln!(t, "add chain {TABLE} {c}");
        }
        for c in &written {
            let _ = writeln!(t, "flush chain {TABLE} {c}");
            for rule in next.chains.get(c).into_iter().flatten() {
                let _ = writeln!(t, "add rule {TABLE} {c} {rule}");
            }
        }
        let mut element_ops = 0;
        if full {
            for map in MAPS {
                let _ = writeln!(t, "flush map {TABLE} {map}");
            }
        } else {
            for e in prev.elements.difference(&next.elements) {
                let _ = writeln!(t, "delete element {TABLE} {} {{ {} }}", e.map, e.key);
                element_ops += 1;
            }
        }
        for e in &next.elements {
            if full || !prev.elements.contains(e) {
                let _ = writeln!(t, "add element {TABLE} {} {{ {} {} }}", e.map, e.key, e.value);
                element_ops += 1;
            }
        }
        let deleted: Vec<String> = prev.chains.keys().filter(|c| !next.chains.contains_key(*c)).cloned().collect();
        for c in &deleted {
            let _ = writeln!(t, "flush chain {TABLE} {c}");
        }
        for c in &deleted {
            let _ = writeln!(t, "delete chain {TABLE} {c}");
        }
        for s in prev.sets.keys().filter(|s| !next.sets.contains_key(*s)) {
            let _ = writeln!(t, "delete set {TABLE} {s}");
        }
        Rendered { text: t, state: next, written, deleted, element_ops }
    }

    /// Records a successfully applied render as the new baseline.
    pub fn commit(&mut self, r: Rendered) {
        self.applied = Some(r.state);
    }

    /// Rule count of the last applied state (for the rules-count metric).
    pub fn rule_count(&self) -> usize {
        self.applied.as_ref().map(|a| a.chains.values().map(Vec::len).sum()).unwrap_or(0)
    }
}
