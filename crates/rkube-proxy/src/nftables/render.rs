//! The nftables objects of one service port in upstream's nftables layout (pure): its elements in the
//! verdict maps (`service-ips`, `service-nodeports`, `no-endpoint-services`, `no-endpoint-nodeports`,
//! `firewall-ips`), its chains (`service-`, `local-`, `external-`, `firewall-`, `endpoint-`) and its
//! ClientIP affinity sets (`affinity-`).

use crate::iptables::RuleOptions;
use crate::model::{Categorized, Endpoint, ServicePort, ServicePortName};
use crate::names::{nft_endpoint_base, nft_service_base};

/// One verdict-map element: `key [comment "…"] : verdict`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    /// Map name.
    pub map: &'static str,
    /// Key (`ip . proto . port` or `proto . port`).
    pub key: String,
    /// Verdict, with its comment if any (`comment "ns/svc:p" : goto reject-chain`).
    pub value: String,
}

/// One service port's nftables objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceObjects {
    /// Map elements.
    pub elements: Vec<Element>,
    /// Chains with their rules (rule text after `add rule ip kube-proxy CHAIN `), in creation order.
    pub chains: Vec<(String, Vec<String>)>,
    /// Affinity sets with their timeout in seconds.
    pub sets: Vec<(String, u32)>,
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
) -> ServiceObjects {
    let mut o = ServiceObjects::default();
    let spn = name.to_string();
    let proto = name.protocol.as_str();
    let base = nft_service_base(name);
    let (cluster_chain, local_chain) = (format!("service-{base}"), format!("local-{base}"));
    let (ext_chain, fw_chain) = (format!("external-{base}"), format!("firewall-{base}"));
    let port = svc.port;

    let uses_cluster = !cat.cluster.is_empty() && svc.uses_cluster_endpoints();
    let uses_local = !cat.local.is_empty() && svc.uses_local_endpoints();
    for ep in &cat.reachable {
        chain_mut(&mut o.chains, &format!("endpoint-{}", nft_endpoint_base(name, ep)));
    }
    if uses_cluster {
        chain_mut(&mut o.chains, &cluster_chain);
    }
    if uses_local {
        chain_mut(&mut o.chains, &local_chain);
    }
    let internal_chain = if svc.internal_local { &local_chain } else { &cluster_chain };
    let has_internal = if svc.internal_local { !cat.local.is_empty() } else { cat.has_endpoints };
    let external_policy_chain = if svc.external_local { &local_chain } else { &cluster_chain };
    let has_external = if svc.external_local { !cat.local.is_empty() } else { cat.has_endpoints };
    let uses_ext = cat.has_endpoints && svc.externally_accessible();
    if uses_ext {
        chain_mut(&mut o.chains, &ext_chain);
    }
    let verdict = if cat.has_endpoints { "drop" } else { "goto reject-chain" };
    let no_ep = |map, key: String| Element { map, key, value: format!("comment \"{spn}\" : {verdict}") };

    let cip = svc.cluster_ip;
    if has_internal {
        o.elements.push(Element {
            map: "service-ips",
            key: format!("{cip} . {proto} . {port}"),
            value: format!(": goto {internal_chain}"),
        });
    } else {
        o.elements.push(no_ep("no-endpoint-services", format!("{cip} . {proto} . {port}")));
    }
    let uses_fw = !svc.load_balancer_ips.is_empty() && !svc.load_balancer_source_ranges.is_empty();
    for ip in svc.external_ips.iter().chain(svc.load_balancer_ips.iter()) {
        let key = format!("{ip} . {proto} . {port}");
        if cat.has_endpoints {
            o.elements.push(Element { map: "service-ips", key: key.clone(), value: format!(": goto {ext_chain}") });
        }
        if !has_external {
            o.elements.push(no_ep("no-endpoint-services", key));
        }
    }
    if uses_fw {
        let rule = format!("ip saddr != {{ {} }} drop", svc.load_balancer_source_ranges.join(", "));
        chain_mut(&mut o.chains, &fw_chain).push(rule);
        for ip in &svc.load_balancer_ips {
            o.elements.push(Element {
                map: "firewall-ips",
                key: format!("{ip} . {proto} . {port}"),
                value: format!("comment \"{spn}\" : goto {fw_chain}"),
            });
        }
    }
    if svc.node_port != 0 {
        let key = format!("{proto} . {}", svc.node_port);
        if cat.has_endpoints {
            o.elements.push(Element {
                map: "service-nodeports",
                key: key.clone(),
                value: format!(": goto {ext_chain}"),
            });
        }
        if !has_external {
            o.elements.push(no_ep("no-endpoint-nodeports", key));
        }
    }

    if has_internal {
        let masq = if opts.masquerade_all {
            Some(String::new())
        } else {
            opts.cluster_cidr.as_ref().map(|c| format!(" ip saddr != {c}"))
        };
        if let Some(src) = masq {
            chain_mut(&mut o.chains, internal_chain)
                .push(format!("ip daddr {cip} {proto} dport {port}{src} jump mark-for-masquerade"));
        }
    }
    if uses_ext {
        let ext = chain_mut(&mut o.chains, &ext_chain);
        if !svc.external_local {
            ext.push("jump mark-for-masquerade".to_string());
        } else {
            if let Some(cidr) = &opts.cluster_cidr {
                ext.push(format!("ip saddr {cidr} goto {cluster_chain} comment \"short-circuit pod traffic\""));
            }
            ext.push("fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"".to_string());
            ext.push(format!("fib saddr type local goto {cluster_chain} comment \"short-circuit local traffic\""));
        }
        if has_external {
            ext.push(format!("goto {external_policy_chain}"));
        }
    }
    if let Some(secs) = svc.affinity_seconds {
        for ep in &cat.reachable {
            o.sets.push((format!("affinity-{}", nft_endpoint_base(name, ep)), secs));
        }
    }
    if uses_cluster {
        endpoint_dispatch(chain_mut(&mut o.chains, &cluster_chain), name, svc, &cat.cluster);
    }
    if uses_local {
        endpoint_dispatch(chain_mut(&mut o.chains, &local_chain), name, svc, &cat.local);
    }
    for ep in &cat.reachable {
        let b = nft_endpoint_base(name, ep);
        let rules = chain_mut(&mut o.chains, &format!("endpoint-{b}"));
        rules.push(format!("ip saddr {} jump mark-for-masquerade", ep.ip));
        if svc.affinity_seconds.is_some() {
            rules.push(format!("update @affinity-{b} {{ ip saddr }}"));
        }
        rules.push(format!("meta l4proto {proto} dnat to {ep}"));
    }
    o
}

/// Affinity lookups, then `numgen random mod n vmap { 0 : goto endpoint-…, … }`.
fn endpoint_dispatch(out: &mut Vec<String>, name: &ServicePortName, svc: &ServicePort, eps: &[Endpoint]) {
    if svc.affinity_seconds.is_some() {
        for ep in eps {
            let b = nft_endpoint_base(name, ep);
            out.push(format!("ip saddr @affinity-{b} goto endpoint-{b}"));
        }
    }
    let arms: Vec<String> =
        eps.iter().enumerate().map(|(i, ep)| format!("{i} : goto endpoint-{}", nft_endpoint_base(name, ep))).collect();
    out.push(format!("numgen random mod {} vmap {{ {} }}", eps.len(), arms.join(", ")));
}
