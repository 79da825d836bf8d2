//! iptables mode: the whole state rendered as one `iptables-restore --noflush` input that redeclares the
//! shared top-level chains, rewrites only the per-service chains whose rules changed since the last applied
//! sync (all of them on a full sync), and deletes stale ones; plus upstream's jump rules from the built-in
//! chains, ensured with `iptables -C`/`-I`.
//!
//! iptables-restore commits each table on its own `COMMIT`, so the input puts nat first: every rule that
//! carries user-supplied text (CIDRs) is in nat, and a nat failure stops the run before filter is touched.
//! The filter table holds only typed addresses and ports.

pub mod render;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::ProxyState;
pub use render::{MASQ_MARK, RuleOptions, ServiceRules, probability, render_service};

/// The jump rules upstream ensures from built-in chains: (table, chain, rule args after the chain).
pub const JUMPS: &[(&str, &str, &str)] = &[
    (
        "filter",
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        "filter",
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    ("filter", "INPUT", "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"),
    (
        "filter",
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "filter",
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    ("filter", "FORWARD", "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"),
    (
        "filter",
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kube-proxy firewall rules\" -j KUBE-PROXY-FIREWALL",
    ),
    (
        "filter",
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kube-proxy firewall rules\" -j KUBE-PROXY-FIREWALL",
    ),
    (
        "filter",
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kube-proxy firewall rules\" -j KUBE-PROXY-FIREWALL",
    ),
    ("nat", "OUTPUT", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "PREROUTING", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "POSTROUTING", "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"),
];

const FILTER_CHAINS: &[&str] =
    &["KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"];
const NAT_CHAINS: &[&str] = &["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"];

/// One rendered sync, not yet applied.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The `iptables-restore --noflush` input.
    pub text: String,
    /// Every per-service nat chain after this sync (what `commit` records as applied).
    pub chains: BTreeMap<String, Vec<String>>,
    /// Per-service chains written by this sync.
    pub written: Vec<String>,
    /// Stale chains deleted by this sync.
    pub deleted: Vec<String>,
    /// Rule counts after this sync: (filter, nat).
    pub rules: (usize, usize),
}

/// Renders syncs, remembering the per-service chains of the last successful apply.
#[derive(Debug, Default)]
pub struct Iptables {
    opts: RuleOptions,
    applied: BTreeMap<String, Vec<String>>,
}

impl Iptables {
    /// A renderer with nothing applied yet (the first render is therefore complete).
    pub fn new(opts: RuleOptions) -> Iptables {
        Iptables { opts, applied: BTreeMap::new() }
    }

    /// Renders `state`; with `full`, every per-service chain is rewritten, otherwise only changed ones.
    pub fn render(&self, state: &ProxyState, full: bool) -> Rendered {
        let mut filter: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut nat_services = Vec::new();
        let mut nat_nodeports = Vec::new();
        let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (name, svc) in &state.services {
            let cat = state.categorize(name, svc);
            let r = render_service(name, svc, &cat, &self.opts);
            nat_services.extend(r.nat_services);
            nat_nodeports.extend(r.nat_nodeports);
            filter.entry("KUBE-SERVICES").or_default().extend(r.filter_services);
            filter.entry("KUBE-EXTERNAL-SERVICES").or_default().extend(r.filter_external);
            filter.entry("KUBE-PROXY-FIREWALL").or_default().extend(r.filter_firewall);
            for (c, rules) in r.chains {
                order.push(c.clone());
                chains.insert(c, rules);
            }
        }
        let written: Vec<String> = order.into_iter().filter(|c| full || self.applied.get(c) != chains.get(c)).collect();
        let deleted: Vec<String> = self.applied.keys().filter(|c| !chains.contains_key(*c)).cloned().collect();

        let mut f = String::with_capacity(1024);
        f.push_str("*filter\n");
        for c in FILTER_CHAINS {
            let _ = writeln!(f, ":{c} - [0:0]");
        }
        let forward = [
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP".to_string(),
            format!(
                "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
            ),
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
        ];
        let mut filter_count = forward.len();
        for line in filter.values().flatten().chain(forward.iter()) {
            f.push_str(line);
            f.push('\n');
        }
        f.push_str("COMMIT\n");
        filter_count += filter.values().map(Vec::len).sum::<usize>();
        let mut t = String::with_capacity(256 + written.len() * 300 + f.len());
        t.push_str("*nat\n");
        for c in NAT_CHAINS
            .iter()
            .copied()
            .chain(written.iter().map(String::as_str))
            .chain(deleted.iter().map(String::as_str))
        {
            let _ = writeln!(t, ":{c} - [0:0]");
        }
        let nodeports_jump =
            "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"";
        if self.opts.nodeport_addresses.is_empty() {
            nat_services
                .push(format!("-A KUBE-SERVICES {nodeports_jump} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"));
        } else {
            for ip in &self.opts.nodeport_addresses {
                nat_services.push(format!("-A KUBE-SERVICES {nodeports_jump} -d {ip} -j KUBE-NODEPORTS"));
            }
        }
        let fixed = [
            format!("-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
            format!("-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}"),
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".to_string(),
            format!("-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"),
        ];
        for line in nat_services.iter().chain(nat_nodeports.iter()).chain(fixed.iter()) {
            t.push_str(line);
            t.push('\n');
        }
        for c in &written {
            for line in chains.get(c).into_iter().flatten() {
                t.push_str(line);
                t.push('\n');
            }
        }
        for c in &deleted {
            let _ = writeln!(t, "-X {c}");
        }
        t.push_str("COMMIT\n");
        t.push_str(&f);
        let nat_count =
            nat_services.len() + nat_nodeports.len() + fixed.len() + chains.values().map(Vec::len).sum::<usize>();
        Rendered { text: t, chains, written, deleted, rules: (filter_count, nat_count) }
    }

    /// Records a successfully applied render as the new baseline.
    pub fn commit(&mut self, r: Rendered) {
        self.applied = r.chains;
    }

    /// Adopts per-service chains found in the kernel (from `iptables-save -t nat`), e.g. left by an earlier
    /// run: the next render rewrites the ones still wanted and deletes the rest.
    pub fn adopt(&mut self, iptables_save: &str) {
        for line in iptables_save.lines() {
            let Some(name) = line.strip_prefix(':').and_then(|l| l.split_whitespace().next()) else { continue };
            if ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"].iter().any(|p| name.starts_with(p)) {
                self.applied.entry(name.to_string()).or_default();
            }
        }
    }
}
