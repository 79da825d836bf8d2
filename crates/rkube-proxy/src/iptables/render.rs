//! The rules of one service port in upstream's iptables layout (pure): its lines in the shared top-level
//! chains (`KUBE-SERVICES`, `KUBE-NODEPORTS`, filter `KUBE-SERVICES`/`KUBE-EXTERNAL-SERVICES`/
//! `KUBE-PROXY-FIREWALL`) and its own nat chains (`KUBE-SVC-`, `KUBE-SVL-`, `KUBE-EXT-`, `KUBE-FW-`,
//! `KUBE-SEP-`).

use std::net::Ipv4Addr;

use crate::model::{Categorized, Endpoint, ServicePort, ServicePortName};
use crate::names::{IptChains, ipt_endpoint_chain};

/// The masquerade mark kube-proxy uses (`--iptables-masquerade-bit` 14).
pub const MASQ_MARK: &str = "0x4000";

/// Options that shape the rules, from the proxy's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOptions {
    /// `--cluster-cidr`: traffic to a cluster IP from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// `--masquerade-all`: all traffic to cluster IPs is masqueraded.
    pub masquerade_all: bool,
    /// `--nodeport-addresses` resolved to addresses; empty means every local address.
    pub nodeport_addresses: Vec<Ipv4Addr>,
}

/// One service port's share of the rules; lines are complete `-A CHAIN …` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRules {
    /// nat `KUBE-SERVICES`.
    pub nat_services: Vec<String>,
    /// nat `KUBE-NODEPORTS`.
    pub nat_nodeports: Vec<String>,
    /// filter `KUBE-SERVICES`.
    pub filter_services: Vec<String>,
    /// filter `KUBE-EXTERNAL-SERVICES`.
    pub filter_external: Vec<String>,
    /// filter `KUBE-PROXY-FIREWALL`.
    pub filter_firewall: Vec<String>,
    /// The port's own nat chains with their rules, in creation order.
    pub chains: Vec<(String, Vec<String>)>,
}

/// Quotes a comment as iptables-restore needs it (upstream quotes only when there is a space).
fn comment(s: &str) -> String {
    if s.contains(' ') { format!("-m comment --comment \"{s}\"") } else { format!("-m comment --comment {s}") }
}

/// Upstream's `computeProbability` (`%0.10f`; iptables-save prints it back with 11 decimals).
pub fn probability(n: usize) -> String {
    format!("{:.10}", 1.0 / n as f64)
}

fn chain_mut<'a>(chains: &'a mut Vec<(String, Vec<String>)>, name: &str) -> &'a mut Vec<String> {
    if let Some(i) = chains.iter().position(|(n, _)| n == name) {
        return &mut chains[i].1;
    }
    chains.push((name.to_string(), Vec::new()));
    let last = chains.len() - 1;
    &mut chains[last].1
}

/// Renders one service port; `cat` is `state.categorize(name, svc)`.
pub fn render_service(
    name: &ServicePortName,
    svc: &ServicePort,
    cat: &Categorized,
    opts: &RuleOptions,
) -> ServiceRules {
    let mut r = ServiceRules::default();
    let spn = name.to_string();
    let proto = name.protocol.as_str();
    let ch = IptChains::of(name);
    let m = format!("-m {proto} -p {proto}");

    let uses_cluster = !cat.cluster.is_empty() && svc.uses_cluster_endpoints();
    let uses_local = !cat.local.is_empty() && svc.uses_local_endpoints();
    let internal_chain = if svc.internal_local { &ch.svl } else { &ch.svc };
    let has_internal = if svc.internal_local { !cat.local.is_empty() } else { cat.has_endpoints };
    let external_policy_chain = if svc.external_local { &ch.svl } else { &ch.svc };
    let has_external = if svc.external_local { !cat.local.is_empty() } else { cat.has_endpoints };
    let uses_ext = cat.has_endpoints && svc.externally_accessible();

    // Chains are declared in a fixed order so the rendered text is stable.
    if uses_cluster {
        chain_mut(&mut r.chains, &ch.svc);
    }
    if uses_local {
        chain_mut(&mut r.chains, &ch.svl);
    }
    if uses_ext {
        chain_mut(&mut r.chains, &ch.ext);
    }

    let (internal_verdict, external_verdict, internal_why, external_why) = if !cat.has_endpoints {
        ("REJECT", "REJECT", "has no endpoints", "has no endpoints")
    } else {
        ("DROP", "DROP", "has no local endpoints", "has no local endpoints")
    };

    let cip = svc.cluster_ip;
    let port = svc.port;
    if has_internal {
        r.nat_services.push(format!(
            "-A KUBE-SERVICES {} {m} -d {cip} --dport {port} -j {internal_chain}",
            comment(&format!("{spn} cluster IP"))
        ));
        let masq = if opts.masquerade_all {
            Some(String::new())
        } else {
            opts.cluster_cidr.as_ref().map(|c| format!(" ! -s {c}"))
        };
        if let Some(src) = masq {
            chain_mut(&mut r.chains, internal_chain).push(format!(
                "-A {internal_chain} {} {m} -d {cip} --dport {port}{src} -j KUBE-MARK-MASQ",
                comment(&format!("{spn} cluster IP"))
            ));
        }
    } else {
        r.filter_services.push(format!(
            "-A KUBE-SERVICES {} {m} -d {cip} --dport {port} -j {internal_verdict}",
            comment(&format!("{spn} {internal_why}"))
        ));
    }

    let ext_target = if !svc.load_balancer_source_ranges.is_empty() { &ch.fw } else { &ch.ext };
    for ip in &svc.external_ips {
        if cat.has_endpoints {
            r.nat_services.push(format!(
                "-A KUBE-SERVICES {} {m} -d {ip} --dport {port} -j {}",
                comment(&format!("{spn} external IP")),
                ch.ext
            ));
        }
        if !has_external {
            r.filter_external.push(format!(
                "-A KUBE-EXTERNAL-SERVICES {} {m} -d {ip} --dport {port} -j {external_verdict}",
                comment(&format!("{spn} {external_why}"))
            ));
        }
    }
    for ip in &svc.load_balancer_ips {
        if cat.has_endpoints {
            r.nat_services.push(format!(
                "-A KUBE-SERVICES {} {m} -d {ip} --dport {port} -j {ext_target}",
                comment(&format!("{spn} loadbalancer IP"))
            ));
        }
        if !has_external {
            r.filter_external.push(format!(
                "-A KUBE-EXTERNAL-SERVICES {} {m} -d {ip} --dport {port} -j {external_verdict}",
                comment(&format!("{spn} {external_why}"))
            ));
        }
    }
    if !svc.load_balancer_source_ranges.is_empty() && cat.has_endpoints && !svc.load_balancer_ips.is_empty() {
        let fw = chain_mut(&mut r.chains, &ch.fw);
        for src in &svc.load_balancer_source_ranges {
            fw.push(format!("-A {} {} -s {src} -j {}", ch.fw, comment(&format!("{spn} loadbalancer IP")), ch.ext));
        }
        for ip in &svc.load_balancer_ips {
            r.filter_firewall.push(format!(
                "-A KUBE-PROXY-FIREWALL {} {m} -d {ip} --dport {port} -j DROP",
                comment(&format!("{spn} traffic not accepted by {}", ch.fw))
            ));
        }
    }
    if svc.node_port != 0 {
        let np = svc.node_port;
        if cat.has_endpoints {
            r.nat_nodeports.push(format!("-A KUBE-NODEPORTS {} {m} --dport {np} -j {}", comment(&spn), ch.ext));
        }
        if !has_external {
            r.filter_external.push(format!(
                "-A KUBE-EXTERNAL-SERVICES {} -m addrtype --dst-type LOCAL {m} --dport {np} -j {external_verdict}",
                comment(&format!("{spn} {external_why}"))
            ));
        }
    }

    if uses_ext {
        let ext = chain_mut(&mut r.chains, &ch.ext);
        if !svc.external_local {
            ext.push(format!(
                "-A {} {} -j KUBE-MARK-MASQ",
                ch.ext,
                comment(&format!("masquerade traffic for {spn} external destinations"))
            ));
        } else {
            if let Some(cidr) = &opts.cluster_cidr {
                ext.push(format!(
                    "-A {} {} -s {cidr} -j {}",
                    ch.ext,
                    comment(&format!("pod traffic for {spn} external destinations")),
                    ch.svc
                ));
            }
            ext.push(format!(
                "-A {} {} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                ch.ext,
                comment(&format!("masquerade LOCAL traffic for {spn} external destinations"))
            ));
            ext.push(format!(
                "-A {} {} -m addrtype --src-type LOCAL -j {}",
                ch.ext,
                comment(&format!("route LOCAL traffic for {spn} external destinations")),
                ch.svc
            ));
        }
        if has_external {
            ext.push(format!("-A {} -j {external_policy_chain}", ch.ext));
        }
    }

    if uses_cluster {
        endpoint_jumps(chain_mut(&mut r.chains, &ch.svc), &ch.svc, name, svc, &cat.cluster);
    }
    if uses_local {
        endpoint_jumps(chain_mut(&mut r.chains, &ch.svl), &ch.svl, name, svc, &cat.local);
    }
    for ep in &cat.reachable {
        let sep = ipt_endpoint_chain(name, ep);
        let mut rules = vec![format!("-A {sep} {} -s {} -j KUBE-MARK-MASQ", comment(&spn), ep.ip)];
        let recent =
            if svc.affinity_seconds.is_some() { format!(" -m recent --name {sep} --set") } else { String::new() };
        rules.push(format!("-A {sep} {}{recent} {m} -j DNAT --to-destination {ep}", comment(&spn)));
        r.chains.push((sep, rules));
    }
    r
}

/// Affinity checks then the random split: endpoint i of n taken with probability 1/(n-i), the last always.
fn endpoint_jumps(out: &mut Vec<String>, chain: &str, name: &ServicePortName, svc: &ServicePort, eps: &[Endpoint]) {
    if let Some(secs) = svc.affinity_seconds {
        for ep in eps {
            let sep = ipt_endpoint_chain(name, ep);
            out.push(format!(
                "-A {chain} {} -m recent --name {sep} --rcheck --seconds {secs} --reap -j {sep}",
                comment(&format!("{name} -> {ep}"))
            ));
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = ipt_endpoint_chain(name, ep);
        let c = comment(&format!("{name} -> {ep}"));
        if i + 1 < n {
            out.push(format!(
                "-A {chain} {c} -m statistic --mode random --probability {} -j {sep}",
                probability(n - i)
            ));
        } else {
            out.push(format!("-A {chain} {c} -j {sep}"));
        }
    }
}
