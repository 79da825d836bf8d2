//! The pod's hostname and domain (upstream's `GeneratePodHostNameAndDomain` and `GetNodenameForKernel`)
//! and its kubelet-managed `/etc/hosts`.

use k8s_openapi::api::core::v1::Pod;

use super::ConfigError;
use crate::KubeletConfig;

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
/// Linux's limit on a hostname (64 bytes with the terminating NUL).
const HOSTNAME_MAX_LEN: usize = 63;
/// What `setHostnameAsFQDN` may put in the kernel's hostname.
const FQDN_MAX_LEN: usize = 64;

/// Upstream's DNS-1123 label messages (`IsDNS1123Label`).
fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    let b = value.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !b.is_empty()
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum);
    if !valid {
        errs.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start \
             and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    errs
}

/// The pod's short hostname (`spec.hostname`, else its name cut to 63 characters) and domain
/// (`<subdomain>.<ns>.svc.<cluster domain>` when it has a subdomain, else empty).
pub(crate) fn hostname_and_domain(pod: &Pod, config: &KubeletConfig) -> Result<(String, String), ConfigError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let mut hostname = name.to_owned();
    if let Some(h) = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
        let errs = dns1123_label_errors(h);
        if !errs.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "pod Hostname {h:?} is not a valid DNS label: {}",
                errs.join(";")
            )));
        }
        hostname = h.to_owned();
    }
    if hostname.len() > HOSTNAME_MAX_LEN {
        let cut = hostname.get(..HOSTNAME_MAX_LEN).unwrap_or(&hostname);
        let cut = cut.trim_end_matches(['-', '.']);
        if cut.is_empty() {
            return Err(ConfigError::Invalid(format!("hostname for pod {name:?} was invalid: {hostname:?}")));
        }
        hostname = cut.to_owned();
    }
    let mut domain = String::new();
    if let Some(sub) = spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty()) {
        let errs = dns1123_label_errors(sub);
        if !errs.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "pod Subdomain {sub:?} is not a valid DNS label: {}",
                errs.join(";")
            )));
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        domain = format!("{sub}.{ns}.svc.{}", config.cluster_domain);
    }
    Ok((hostname, domain))
}

/// The hostname the sandbox's kernel gets: the short hostname, or the FQDN with `setHostnameAsFQDN`.
pub(crate) fn kernel_hostname(pod: &Pod, hostname: &str, domain: &str) -> Result<String, ConfigError> {
    let as_fqdn = pod.spec.as_ref().and_then(|s| s.set_hostname_as_fqdn).unwrap_or(false);
    if !as_fqdn || domain.is_empty() {
        return Ok(hostname.to_owned());
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > FQDN_MAX_LEN {
        return Err(ConfigError::Invalid(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX_LEN} \
             characters is the max, {} characters requested)",
            fqdn.len()
        )));
    }
    Ok(fqdn)
}

fn host_aliases(pod: &Pod) -> String {
    let aliases = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref()).filter(|a| !a.is_empty());
    let Some(aliases) = aliases else { return String::new() };
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
        out.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    out
}

/// The managed hosts file of a pod with its own network: localhost lines, each pod IP with the
/// hostname (FQDN first when the pod has a subdomain), then `hostAliases`.
pub(crate) fn managed_hosts(pod: &Pod, pod_ips: &[String], hostname: &str, domain: &str) -> String {
    let mut out = String::from(MANAGED_HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out.push_str(&host_aliases(pod));
    out
}

/// The hosts file of a host-network pod: the node's own, under a header, then `hostAliases`.
pub(crate) fn host_network_hosts(pod: &Pod, node_hosts: &str) -> String {
    format!("{MANAGED_HEADER_HOST_NETWORK}{node_hosts}{}", host_aliases(pod))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::{config, pod};
    use serde_json::json;

    const LOCAL: &str = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost \
                         ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n\
                         fe00::2\tip6-allrouters\n";

    #[test]
    fn hostnames() {
        let long = "a".repeat(62) + "-b";
        let cases = [
            (json!({}), Ok(("web".to_owned(), String::new()))),
            (json!({"spec": {"hostname": "h1"}}), Ok(("h1".to_owned(), String::new()))),
            (
                json!({"spec": {"hostname": "h1", "subdomain": "sub"}}),
                Ok(("h1".to_owned(), "sub.ns.svc.cluster.local".to_owned())),
            ),
            (json!({"metadata": {"name": long}}), Ok(("a".repeat(62), String::new()))),
            (json!({"spec": {"hostname": "Bad_Name"}}), Err("pod Hostname \"Bad_Name\" is not a valid DNS label: ")),
            (json!({"spec": {"subdomain": "x.y"}}), Err("pod Subdomain \"x.y\" is not a valid DNS label: ")),
        ];
        for (over, want) in cases {
            let got = hostname_and_domain(&pod(over.clone()), &config()).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{over}"),
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{over}: {g}"),
                (g, w) => panic!("{over}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn kernel_hostname_with_fqdn() {
        let p = pod(json!({"spec": {"setHostnameAsFQDN": true}}));
        assert_eq!(kernel_hostname(&p, "h", "s.ns.svc.cluster.local").unwrap(), "h.s.ns.svc.cluster.local");
        assert_eq!(kernel_hostname(&p, "h", "").unwrap(), "h");
        let long = "x".repeat(60);
        assert!(kernel_hostname(&p, &long, "s.ns.svc.cluster.local").unwrap_err().to_string().contains("too long"));
        assert_eq!(kernel_hostname(&pod(json!({})), "h", "s.ns.svc.cluster.local").unwrap(), "h");
    }

    #[test]
    fn managed_hosts_files() {
        let ips = vec!["172.30.0.5".to_owned()];
        assert_eq!(managed_hosts(&pod(json!({})), &ips, "web", ""), format!("{LOCAL}172.30.0.5\tweb\n"));
        assert_eq!(
            managed_hosts(&pod(json!({})), &ips, "h", "sub.ns.svc.cluster.local"),
            format!("{LOCAL}172.30.0.5\th.sub.ns.svc.cluster.local\th\n")
        );
        let p = pod(json!({"spec": {"hostAliases": [
            {"ip": "10.1.1.1", "hostnames": ["foo.local", "bar.local"]},
            {"ip": "10.1.1.2", "hostnames": ["baz"]}
        ]}}));
        assert_eq!(
            managed_hosts(&p, &ips, "web", ""),
            format!(
                "{LOCAL}172.30.0.5\tweb\n\n# Entries added by HostAliases.\n10.1.1.1\tfoo.local\tbar.local\n\
                 10.1.1.2\tbaz\n"
            )
        );
        assert_eq!(
            host_network_hosts(&p, "127.0.0.1 localhost\n"),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries added by \
             HostAliases.\n10.1.1.1\tfoo.local\tbar.local\n10.1.1.2\tbaz\n"
        );
    }
}
