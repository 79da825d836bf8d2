//! iptables chains rkube owns: the proxy's (`KUBE-SERVICES`, `KUBE-SVC-…` and the rest, as kube-proxy names
//! them) and flannel's (`FLANNEL-FWD`, `FLANNEL-POSTRTG`). Chains other programs make (kubelet's
//! `KUBE-FIREWALL`, Docker's, the user's) are left alone. Removal is one `iptables-restore --noflush` per table:
//! the jumps into our chains from everyone else's chains are deleted, then our chains flushed and deleted.

use crate::Result;

/// The proxy's fixed chains, by table (rkube-proxy's iptables mode declares these).
const PROXY_CHAINS: &[(&str, &[&str])] = &[
    ("filter", &["KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"]),
    ("nat", &["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]),
];

/// Prefixes of the proxy's per-service and per-endpoint chains (a hash follows).
const PROXY_PREFIXES: &[&str] = &["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"];

/// Tables swept.
pub const TABLES: &[&str] = &["filter", "nat", "mangle"];

/// Whether `chain` in `table` is one rkube makes.
pub fn owned(table: &str, chain: &str) -> bool {
    let fixed = PROXY_CHAINS.iter().any(|(t, cs)| *t == table && cs.contains(&chain));
    let flannel = (table == "filter" && chain == rkube_net::iptables::FWD_CHAIN)
        || (table == "nat" && chain == rkube_net::iptables::POSTRTG_CHAIN);
    let per_service = table == "nat" && PROXY_PREFIXES.iter().any(|p| chain.starts_with(p) && chain.len() > p.len());
    fixed || flannel || per_service
}

/// What to remove from one table, read from `iptables-save -t TABLE`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Rules in other chains jumping to ours (`-A CHAIN …` as iptables-save prints them).
    pub jumps: Vec<String>,
    /// Our chains.
    pub chains: Vec<String>,
}

/// The target of a rule (`-j X` or `-g X`).
fn target(rule: &str) -> Option<&str> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == "-j" || w[0] == "-g").map(|w| w[1])
}

/// The plan for `table` from its `iptables-save` output.
pub fn plan(table: &str, save: &str) -> Plan {
    let mut p = Plan::default();
    for line in save.lines() {
        if let Some(decl) = line.strip_prefix(':') {
            let chain = decl.split_whitespace().next().unwrap_or_default();
            if owned(table, chain) {
                p.chains.push(chain.to_owned());
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split_whitespace().next().unwrap_or_default();
            if !owned(table, chain) && target(rule).is_some_and(|t| owned(table, t)) {
                p.jumps.push(line.to_owned());
            }
        }
    }
    p
}

/// The `iptables-restore --noflush` input carrying out `plan` in `table`; `None` when there is nothing to do.
pub fn restore_input(table: &str, plan: &Plan) -> Option<String> {
    if plan.chains.is_empty() && plan.jumps.is_empty() {
        return None;
    }
    let mut s = format!("*{table}\n");
    // Declaring a chain flushes it, so no rule of ours still references another of our chains when it goes.
    for c in &plan.chains {
        s.push_str(&format!(":{c} - [0:0]\n"));
    }
    for j in &plan.jumps {
        s.push_str(&format!("-D {}\n", &j[3..]));
    }
    for c in &plan.chains {
        s.push_str(&format!("-X {c}\n"));
    }
    s.push_str("COMMIT\n");
    Some(s)
}

/// Removes our chains and the jumps into them from every table of this network namespace; returns a line per
/// thing removed (`nat chain KUBE-SERVICES`).
pub fn sweep() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for table in TABLES {
        let save = match crate::run("iptables-save", &["-t", table], None) {
            Err(crate::Error::NotInstalled { .. }) => return Ok(removed),
            other => other?,
        };
        let plan = plan(table, &save);
        if let Some(input) = restore_input(table, &plan) {
            crate::run("iptables-restore", &["-w", "--noflush"], Some(&input))?;
            removed.extend(plan.jumps.iter().map(|j| format!("{table} rule {}", &j[3..])));
            removed.extend(plan.chains.iter().map(|c| format!("{table} chain {c}")));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxys_and_flannels_chains_are_ours() {
        // Every chain the proxy jumps to from a built-in chain is in our list.
        for (table, _, rule) in rkube_proxy::iptables::JUMPS {
            let t = target(rule).unwrap();
            assert!(owned(table, t), "{table} {t}");
        }
        assert!(owned("filter", "FLANNEL-FWD"));
        assert!(owned("nat", "FLANNEL-POSTRTG"));
        assert!(owned("nat", "KUBE-SVC-XPGD46QRK7WJZT7O"));
        assert!(owned("nat", "KUBE-MARK-MASQ"));
        for (t, c) in [("filter", "KUBE-FIREWALL"), ("nat", "KUBE-SVC-"), ("filter", "DOCKER"), ("nat", "POSTROUTING")]
        {
            assert!(!owned(t, c), "{t} {c}");
        }
    }

    #[test]
    fn plan_deletes_jumps_then_chains() {
        let save = "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
                    :KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAA - [0:0]\n:MINE - [0:0]\n\
                    -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
                    -A POSTROUTING -j MINE\n-A MINE -j KUBE-SVC-AAAA\n\
                    -A KUBE-SERVICES -d 10.254.0.1/32 -j KUBE-SVC-AAAA\nCOMMIT\n";
        let p = plan("nat", save);
        assert_eq!(p.chains, ["KUBE-SERVICES", "KUBE-SVC-AAAA"]);
        assert_eq!(
            p.jumps,
            [
                "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
                "-A MINE -j KUBE-SVC-AAAA"
            ]
        );
        let input = restore_input("nat", &p).unwrap();
        assert_eq!(
            input,
            "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAA - [0:0]\n\
             -D PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
             -D MINE -j KUBE-SVC-AAAA\n-X KUBE-SERVICES\n-X KUBE-SVC-AAAA\nCOMMIT\n"
        );
        assert_eq!(restore_input("filter", &plan("filter", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")), None);
    }
}
