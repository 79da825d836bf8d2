//! The sandbox's DNS config per `dnsPolicy` (upstream's `pkg/kubelet/network/dns`): cluster DNS with the
//! namespace search path, the host's resolv.conf, or nothing, then the pod's `dnsConfig` merged in, then
//! upstream's limits (3 nameservers, 32 search domains of at most 253 characters, 2048 characters in all).

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use rkube_cri::api::DnsConfig;

use super::{ConfigError, Warning, pod_full_name};
use crate::KubeletConfig;

/// `validation.MaxDNSNameservers`.
const MAX_NAMESERVERS: usize = 3;
/// `validation.MaxDNSSearchPaths`.
const MAX_SEARCH_PATHS: usize = 32;
/// `validation.MaxDNSSearchListChars`.
const MAX_SEARCH_LIST_CHARS: usize = 2048;
/// `validation.DNS1123SubdomainMaxLength`: longer search domains make some resolvers abort.
const MAX_SEARCH_DOMAIN_LEN: usize = 253;

/// What the host's resolv.conf says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostDns {
    pub(crate) servers: Vec<String>,
    pub(crate) searches: Vec<String>,
    pub(crate) options: Vec<String>,
}

/// Parses resolv.conf as upstream does: nameservers accumulate, the last `search` line wins (domains
/// without their trailing dot, `.` dropped), `options` accumulate with later values of an option
/// replacing earlier ones.
pub(crate) fn parse_resolv_conf(text: &str) -> HostDns {
    let mut host = HostDns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["nameserver", server, ..] => host.servers.push((*server).to_owned()),
            ["search", domains @ ..] => {
                host.searches =
                    domains.iter().filter(|d| **d != ".").map(|d| d.trim_end_matches('.').to_owned()).collect();
            }
            ["options", options @ ..] => {
                for option in options {
                    set_option(&mut host.options, option);
                }
            }
            _ => {}
        }
    }
    host
}

fn option_name(option: &str) -> &str {
    option.split(':').next().unwrap_or(option)
}

/// Adds `option` (`name` or `name:value`), replacing an option of the same name where it stands.
fn set_option(options: &mut Vec<String>, option: &str) {
    match options.iter_mut().find(|o| option_name(o) == option_name(option)) {
        Some(existing) => *existing = option.to_owned(),
        None => options.push(option.to_owned()),
    }
}

/// Reads the host's resolv.conf (`--resolv-conf`); an empty path means none.
pub(crate) fn read_host_dns(path: &Path) -> Result<HostDns, ConfigError> {
    if path.as_os_str().is_empty() {
        return Ok(HostDns::default());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid(format!("failed to read resolv.conf {}: {e}", path.display())))?;
    Ok(parse_resolv_conf(&text))
}

enum DnsType {
    Cluster,
    Host,
    None,
}

fn dns_type(pod: &Pod) -> DnsType {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    match spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst") {
        "None" => DnsType::None,
        "ClusterFirstWithHostNet" => DnsType::Cluster,
        "Default" => DnsType::Host,
        // ClusterFirst: host networking falls back to the host's resolver.
        _ if host_network => DnsType::Host,
        _ => DnsType::Cluster,
    }
}

fn omit_duplicates(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The pod's DNS config; `warnings` gets upstream's `MissingClusterDNS` and `DNSConfigForming` events.
pub(crate) fn pod_dns_config(
    pod: &Pod,
    config: &KubeletConfig,
    host: &HostDns,
    warnings: &mut Vec<Warning>,
) -> DnsConfig {
    let mut dns =
        DnsConfig { servers: host.servers.clone(), searches: host.searches.clone(), options: host.options.clone() };
    let mut kind = dns_type(pod);
    if matches!(kind, DnsType::Cluster) && config.cluster_dns.is_empty() {
        let message = "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" \
                       policy. Falling back to \"Default\" policy.";
        warnings.push(Warning::new("MissingClusterDNS", format!("pod: \"{}\". {message}", pod_full_name(pod))));
        kind = DnsType::Host;
    }
    match kind {
        DnsType::None => dns = DnsConfig::default(),
        DnsType::Cluster => {
            dns.servers = config.cluster_dns.iter().map(|ip| ip.to_string()).collect();
            dns.searches = cluster_searches(pod, &config.cluster_domain, &host.searches);
            dns.options = vec!["ndots:5".to_owned()];
        }
        DnsType::Host => {
            if config.resolv_conf.as_os_str().is_empty() {
                // No resolv.conf: point at the local machine and disable the search path, as upstream.
                dns.servers = vec![if config.node_ip.is_ipv6() { "::1" } else { "127.0.0.1" }.to_owned()];
                dns.searches = vec![".".to_owned()];
            }
        }
    }
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        dns.servers.extend(extra.nameservers.iter().flatten().cloned());
        dns.servers = omit_duplicates(std::mem::take(&mut dns.servers));
        dns.searches.extend(extra.searches.iter().flatten().cloned());
        dns.searches = omit_duplicates(std::mem::take(&mut dns.searches));
        for option in extra.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else { continue };
            match option.value.as_deref().filter(|v| !v.is_empty()) {
                Some(value) => set_option(&mut dns.options, &format!("{name}:{value}")),
                None => set_option(&mut dns.options, name),
            }
        }
    }
    fit_limits(&mut dns, warnings);
    dns
}

/// `<ns>.svc.<domain> svc.<domain> <domain>` then the host's search domains, without duplicates.
fn cluster_searches(pod: &Pod, domain: &str, host: &[String]) -> Vec<String> {
    if domain.is_empty() {
        return host.to_vec();
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut searches = vec![format!("{ns}.svc.{domain}"), format!("svc.{domain}"), domain.to_owned()];
    searches.extend(host.iter().cloned());
    omit_duplicates(searches)
}

fn fit_limits(dns: &mut DnsConfig, warnings: &mut Vec<Warning>) {
    if dns.servers.len() > MAX_NAMESERVERS {
        dns.servers.truncate(MAX_NAMESERVERS);
        warnings.push(Warning::new(
            "DNSConfigForming",
            format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver \
                 line is: {}",
                dns.servers.join(" ")
            ),
        ));
    }
    let mut exceeded = false;
    if dns.searches.len() > MAX_SEARCH_PATHS {
        dns.searches.truncate(MAX_SEARCH_PATHS);
        exceeded = true;
    }
    let before = dns.searches.len();
    dns.searches.retain(|s| s.len() <= MAX_SEARCH_DOMAIN_LEN);
    exceeded |= dns.searches.len() != before;
    let mut line_len = dns.searches.join(" ").len();
    while line_len > MAX_SEARCH_LIST_CHARS {
        // Drop domains from the end until the line fits.
        let Some(last) = dns.searches.pop() else { break };
        line_len = line_len.saturating_sub(last.len() + 1);
        exceeded = true;
    }
    if exceeded {
        warnings.push(Warning::new(
            "DNSConfigForming",
            format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line \
                 is: {}",
                dns.searches.join(" ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::{config, pod};
    use serde_json::json;

    fn host() -> HostDns {
        parse_resolv_conf(
            "# comment\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch old.example\n\
             search corp.example. lab.example .\noptions ndots:2 rotate\noptions ndots:3\n",
        )
    }

    #[test]
    fn resolv_conf_parsing() {
        assert_eq!(
            host(),
            HostDns {
                servers: vec!["192.168.1.1".into(), "192.168.1.2".into()],
                searches: vec!["corp.example".into(), "lab.example".into()],
                options: vec!["ndots:3".into(), "rotate".into()],
            }
        );
    }

    fn dns(spec: serde_json::Value) -> (DnsConfig, Vec<Warning>) {
        let mut warnings = Vec::new();
        let mut cfg = config();
        cfg.resolv_conf = "/etc/resolv.conf".into();
        let d = pod_dns_config(&pod(json!({ "spec": spec })), &cfg, &host(), &mut warnings);
        (d, warnings)
    }

    #[test]
    fn policies() {
        let cluster = DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec![
                "ns.svc.cluster.local".into(),
                "svc.cluster.local".into(),
                "cluster.local".into(),
                "corp.example".into(),
                "lab.example".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        let h = host();
        let host_cfg = DnsConfig { servers: h.servers, searches: h.searches, options: h.options };
        let cases = [
            ("default policy is ClusterFirst", json!({}), cluster.clone()),
            ("ClusterFirst", json!({"dnsPolicy": "ClusterFirst"}), cluster.clone()),
            (
                "ClusterFirst on host network",
                json!({"dnsPolicy": "ClusterFirst", "hostNetwork": true}),
                host_cfg.clone(),
            ),
            (
                "ClusterFirstWithHostNet",
                json!({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true}),
                cluster.clone(),
            ),
            ("Default", json!({"dnsPolicy": "Default"}), host_cfg),
            (
                "None with dnsConfig",
                json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
                    "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}}),
                DnsConfig {
                    servers: vec!["1.1.1.1".into()],
                    searches: vec!["a.example".into()],
                    options: vec!["ndots:1".into(), "edns0".into()],
                },
            ),
            (
                "ClusterFirst merged with dnsConfig",
                json!({"dnsConfig": {"nameservers": ["10.96.0.10", "1.1.1.1"], "searches": ["cluster.local", "x.example"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "1"}]}}),
                DnsConfig {
                    servers: vec!["10.96.0.10".into(), "1.1.1.1".into()],
                    searches: [cluster.searches.clone(), vec!["x.example".into()]].concat(),
                    options: vec!["ndots:2".into(), "timeout:1".into()],
                },
            ),
        ];
        for (name, spec, want) in cases {
            let (got, warnings) = dns(spec);
            assert_eq!(got, want, "{name}");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }

    #[test]
    fn missing_cluster_dns_falls_back_to_host() {
        let mut cfg = config();
        cfg.cluster_dns.clear();
        let mut warnings = Vec::new();
        let got = pod_dns_config(&pod(json!({})), &cfg, &host(), &mut warnings);
        assert_eq!(got.servers, host().servers);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].reason, "MissingClusterDNS");
        assert!(warnings[0].message.starts_with("pod: \"web_ns(1234-5678)\". kubelet does not have ClusterDNS IP"));
    }

    #[test]
    fn host_policy_without_resolv_conf_uses_localhost() {
        let mut warnings = Vec::new();
        let mut cfg = config();
        cfg.resolv_conf = "".into();
        let got =
            pod_dns_config(&pod(json!({"spec": {"dnsPolicy": "Default"}})), &cfg, &HostDns::default(), &mut warnings);
        assert_eq!(got.servers, vec!["127.0.0.1".to_owned()]);
        assert_eq!(got.searches, vec![".".to_owned()]);
    }

    #[test]
    fn limits() {
        let (got, warnings) = dns(json!({"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"], "searches": [
                "a".repeat(254), "b.example"]}}));
        assert_eq!(got.servers, vec!["10.96.0.10", "1.1.1.1", "8.8.8.8"]);
        assert!(!got.searches.iter().any(|s| s.len() > 253));
        assert!(got.searches.contains(&"b.example".to_owned()));
        let reasons: Vec<&str> = warnings.iter().map(|w| w.reason).collect();
        assert_eq!(reasons, ["DNSConfigForming", "DNSConfigForming"]);
        assert!(warnings[0].message.ends_with("the applied nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8"));

        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let (got, _) = dns(json!({"dnsPolicy": "None", "dnsConfig": {"searches": many}}));
        assert_eq!(got.searches.len(), 32);

        let long: Vec<String> = (0..20).map(|i| format!("{i:02}{}", "x".repeat(150))).collect();
        let (got, warnings) = dns(json!({"dnsPolicy": "None", "dnsConfig": {"searches": long}}));
        assert!(got.searches.join(" ").len() <= 2048);
        assert_eq!(got.searches.len(), 13);
        assert_eq!(warnings.len(), 1);
    }
}
