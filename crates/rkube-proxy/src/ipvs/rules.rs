//! The iptables rules upstream's ipvs mode keeps next to IPVS, with upstream's chain names: `KUBE-SERVICES`
//! (masquerade marks for cluster IPs, externalIPs and LoadBalancer IPs, the jump to `KUBE-NODE-PORT`, then
//! ACCEPT for IPVS traffic), `KUBE-NODE-PORT`, `KUBE-LOAD-BALANCER`, `KUBE-POSTROUTING` (hairpin masquerade,
//! then the masquerade of marked packets), `KUBE-MARK-MASQ` and filter `KUBE-FORWARD`.
//!
//! Upstream matches ipsets here (`KUBE-CLUSTER-IP`, `KUBE-LOOP-BACK`, `KUBE-NODE-PORT-TCP`, ...). This host
//! has neither the `ipset` tool nor, with iptables on its nf_tables backend, a way for an iptables rule to
//! match an nft named set, so each set member becomes one plain rule in the chain where upstream's set match
//! sits, in the same order, under the set's comment. Lookup is linear instead of hashed; the ruleset is
//! written whole each sync in one `iptables-restore --noflush` run, so it is never half-applied.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::exec::Exec;
use crate::iptables::{MASQ_MARK, RuleOptions};
use crate::model::{Protocol, ProxyState};
use crate::proxier::words;

/// Jump rules from the built-in chains: (table, chain, rule args after the chain).
pub const JUMPS: &[(&str, &str, &str)] = &[
    ("nat", "OUTPUT", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "PREROUTING", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "POSTROUTING", "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"),
    ("filter", "FORWARD", "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"),
];

/// The nat chains ipvs mode owns.
pub const NAT_CHAINS: &[&str] =
    &["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ"];
/// The filter chains ipvs mode owns.
pub const FILTER_CHAINS: &[&str] = &["KUBE-FORWARD"];

const CLUSTER_IP: &str = "\"Kubernetes service cluster ip + port for masquerade purpose\"";
const EXTERNAL_IP: &str = "\"Kubernetes service external ip + port for masquerade and filter purpose\"";
const LB: &str = "\"Kubernetes service lb portal\"";
const LB_LOCAL: &str = "\"Kubernetes service load balancer ip + port with externalTrafficPolicy=local\"";
const LOOP_BACK: &str = "\"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\"";

/// A rendered ruleset and its rule counts (nat, filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The `iptables-restore --noflush` input.
    pub text: String,
    /// Rules in nat.
    pub nat: usize,
    /// Rules in filter.
    pub filter: usize,
}

fn m(p: Protocol) -> String {
    format!("-p {0} -m {0}", p.as_str())
}

/// Renders the whole ipvs-mode ruleset for `state`.
pub fn render(state: &ProxyState, opts: &RuleOptions) -> Rules {
    let (mut services, mut accept, mut node_port, mut lb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut np_local = Vec::new();
    let mut loop_back: BTreeSet<(Protocol, std::net::Ipv4Addr, u16)> = BTreeSet::new();
    for (name, svc) in &state.services {
        let (p, cip, port) = (m(name.protocol), svc.cluster_ip, svc.port);
        let dst = format!("-d {cip}/32 {p} --dport {port}");
        // Upstream: masquerade-all marks every packet to a cluster IP; with --cluster-cidr only off-cluster
        // sources; without either, only node-originated packets whose source is the VIP itself.
        let masq = if opts.masquerade_all {
            format!("-A KUBE-SERVICES -m comment --comment {CLUSTER_IP} {dst} -j KUBE-MARK-MASQ")
        } else if let Some(cidr) = &opts.cluster_cidr {
            format!("-A KUBE-SERVICES -m comment --comment {CLUSTER_IP} {dst} ! -s {cidr} -j KUBE-MARK-MASQ")
        } else {
            format!(
                "-A KUBE-SERVICES -m comment --comment {CLUSTER_IP} -s {cip}/32 {p} --dport {port} -j KUBE-MARK-MASQ"
            )
        };
        services.push(masq);
        accept.push(format!("-A KUBE-SERVICES -m comment --comment {CLUSTER_IP} {dst} -j ACCEPT"));
        for ip in &svc.external_ips {
            let d = format!("-d {ip}/32 {p} --dport {port}");
            services.push(format!("-A KUBE-SERVICES -m comment --comment {EXTERNAL_IP} {d} -j KUBE-MARK-MASQ"));
            services.push(format!(
                "-A KUBE-SERVICES -m comment --comment {EXTERNAL_IP} {d} -m addrtype --dst-type LOCAL -j ACCEPT"
            ));
        }
        for ip in &svc.load_balancer_ips {
            let d = format!("-d {ip}/32 {p} --dport {port}");
            services.push(format!("-A KUBE-SERVICES -m comment --comment {LB} {d} -j KUBE-LOAD-BALANCER"));
            if svc.external_local {
                lb.push(format!("-A KUBE-LOAD-BALANCER -m comment --comment {LB_LOCAL} {d} -j RETURN"));
            }
            accept.push(format!("-A KUBE-SERVICES -m comment --comment {LB} {d} -j ACCEPT"));
        }
        if svc.node_port != 0 {
            let (proto, np) = (name.protocol.as_str().to_uppercase(), svc.node_port);
            if svc.external_local {
                np_local.push(format!(
                    "-A KUBE-NODE-PORT {p} --dport {np} -m comment --comment \"Kubernetes nodeport {proto} port with \
                     externalTrafficPolicy=local\" -j RETURN"
                ));
            }
            node_port.push(format!(
                "-A KUBE-NODE-PORT {p} --dport {np} -m comment --comment \"Kubernetes nodeport {proto} port for \
                 masquerade purpose\" -j KUBE-MARK-MASQ"
            ));
        }
        // Hairpin: a local endpoint reaching itself through the service arrives with its own address as
        // source and destination after IPVS; masquerading makes the reply come back through the node.
        for ep in state.endpoints_of(name).iter().filter(|e| e.local) {
            loop_back.insert((name.protocol, ep.ip, ep.port));
        }
    }
    if state.services.values().any(|s| !s.load_balancer_ips.is_empty()) {
        lb.push("-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ".to_string());
    }
    let jump = "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"";
    if opts.nodeport_addresses.is_empty() {
        services.push(format!("-A KUBE-SERVICES {jump} -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT"));
    } else {
        services.extend(
            opts.nodeport_addresses.iter().map(|ip| format!("-A KUBE-SERVICES {jump} -d {ip}/32 -j KUBE-NODE-PORT")),
        );
    }
    let mut postrouting: Vec<String> = loop_back
        .iter()
        .map(|(p, ip, port)| {
            let m = m(*p);
            let matches = format!("-s {ip}/32 -d {ip}/32 {m} --dport {port}");
            format!("-A KUBE-POSTROUTING -m comment --comment {LOOP_BACK} {matches} -j MASQUERADE")
        })
        .collect();
    postrouting.extend([
        format!("-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
        format!("-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}"),
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" \
         -j MASQUERADE --random-fully"
            .to_string(),
    ]);
    let mark = [format!("-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}")];
    let forward = [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP".to_string(),
        format!(
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark \
             {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
        ),
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate \
         RELATED,ESTABLISHED -j ACCEPT"
            .to_string(),
    ];
    let mut t = String::from("*nat\n");
    for c in NAT_CHAINS {
        let _ = writeln!(t, ":{c} - [0:0]");
    }
    let nat: Vec<&String> = services
        .iter()
        .chain(&accept)
        .chain(&np_local)
        .chain(&node_port)
        .chain(&lb)
        .chain(&postrouting)
        .chain(&mark)
        .collect();
    for l in &nat {
        let _ = writeln!(t, "{l}");
    }
    t.push_str("COMMIT\n*filter\n");
    for c in FILTER_CHAINS {
        let _ = writeln!(t, ":{c} - [0:0]");
    }
    for l in &forward {
        let _ = writeln!(t, "{l}");
    }
    t.push_str("COMMIT\n");
    Rules { text: t, nat: nat.len(), filter: forward.len() }
}

/// Applies a rendered ruleset atomically, then makes sure the jumps from the built-in chains exist.
pub async fn apply(exec: &Exec, rules: &Rules) -> Result<(), crate::Error> {
    exec.run(&["iptables-restore", "-w", "5", "--noflush", "--counters"], Some(&rules.text)).await?;
    for (table, chain, rule) in JUMPS {
        let rest = words(rule);
        let mut check: Vec<&str> = vec!["iptables", "-w", "5", "-t", table, "-C", chain];
        check.extend(rest.iter().map(String::as_str));
        if exec.run(&check, None).await.is_err() {
            let mut insert: Vec<&str> = vec!["iptables", "-w", "5", "-t", table, "-I", chain];
            insert.extend(rest.iter().map(String::as_str));
            exec.run(&insert, None).await?;
        }
    }
    Ok(())
}

/// Removes everything `apply` wrote: the jumps, then the chains (upstream's cleanup on leaving ipvs mode).
pub async fn remove(exec: &Exec) -> Result<(), crate::Error> {
    for (table, chain, rule) in JUMPS {
        let rest = words(rule);
        let mut del: Vec<&str> = vec!["iptables", "-w", "5", "-t", table, "-D", chain];
        del.extend(rest.iter().map(String::as_str));
        while exec.run(&del, None).await.is_ok() {}
    }
    let mut t = String::from("*nat\n");
    for c in NAT_CHAINS {
        let _ = writeln!(t, ":{c} - [0:0]");
    }
    for c in NAT_CHAINS {
        let _ = writeln!(t, "-X {c}");
    }
    t.push_str("COMMIT\n*filter\n");
    for c in FILTER_CHAINS {
        let _ = writeln!(t, ":{c} - [0:0]\n-X {c}");
    }
    t.push_str("COMMIT\n");
    exec.run(&["iptables-restore", "-w", "5", "--noflush"], Some(&t)).await.map(|_| ())
}
