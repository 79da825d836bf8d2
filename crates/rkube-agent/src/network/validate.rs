//! Checking the pod-network flags at start: every problem named with its value and the fix, before anything
//! on the node changes (so a bad flag never disturbs a network that is already up).

use rkube_net::cidr::Ipv4Net;
use rkube_net::config::NetConfig;

use super::NetworkFlags;

/// The backends `--flannel-backend` accepts.
pub(crate) const BACKENDS: [&str; 3] = ["vxlan", "host-gw", "none"];

/// The flannel network config the flags describe (what is written to `<prefix>/config` when etcd has none, and
/// what the kube subnet manager runs with). `None` with `--flannel-backend none` or when a flag is bad (the
/// problem is pushed onto `problems`).
pub(crate) fn check(flags: &NetworkFlags, problems: &mut Vec<String>) -> Option<NetConfig> {
    let backend_ok = BACKENDS.contains(&flags.backend.as_str());
    if !backend_ok {
        problems.push(format!(
            "--flannel-backend {:?} is not a pod network backend; use vxlan (the default), host-gw (nodes on one L2 network) or none",
            flags.backend
        ));
    }
    let network = match flags.cluster_cidr.parse::<Ipv4Net>() {
        Ok(n) if n.addr().to_string() != flags.cluster_cidr.split('/').next().unwrap_or_default() => {
            problems
                .push(format!("--cluster-cidr {} has host bits set; use the network address {n}", flags.cluster_cidr));
            None
        }
        Ok(n) => Some(n),
        Err(e) => {
            problems.push(format!("--cluster-cidr {e}"));
            None
        }
    };
    if let Some(re) = &flags.iface_regex
        && let Err(e) = regex::Regex::new(re)
    {
        problems.push(format!("--flannel-iface-regex {re:?} is not a valid regular expression: {e}"));
    }
    if flags.iface.as_deref().is_some_and(str::is_empty) {
        problems.push("--flannel-iface is empty; give an interface name (eth0) or one of its addresses".to_owned());
    }
    for e in &flags.etcd_endpoints {
        if let Err(why) = check_endpoint(e) {
            problems.push(format!("--flannel-etcd-endpoints {e:?}: {why}"));
        }
    }
    if !flags.etcd_prefix.starts_with('/') || flags.etcd_prefix.trim_end_matches('/').is_empty() {
        problems.push(format!(
            "--flannel-etcd-prefix {:?} must be an absolute etcd key like /coreos.com/network or /kube-centos/network",
            flags.etcd_prefix
        ));
    }
    for (flag, path) in [("--flannel-subnet-env", &flags.subnet_env), ("--flannel-docker-opts", &flags.docker_opts)] {
        if !path.is_absolute() {
            problems.push(format!("{flag} {} must be an absolute path", path.display()));
        }
    }
    if flags.backend == "none" {
        if !flags.etcd_endpoints.is_empty() {
            problems.push(
                "--flannel-etcd-endpoints has no use with --flannel-backend none (no subnets are leased); drop it or pick vxlan or host-gw"
                    .to_owned(),
            );
        }
        if let Some(n) = network
            && !(n.prefix()..=30).contains(&flags.subnet_len)
        {
            problems.push(format!(
                "--node-cidr-mask-size {} does not fit --cluster-cidr {n}; use a size from {} to 30",
                flags.subnet_len,
                n.prefix()
            ));
        }
        return None;
    }
    let network = network.filter(|_| backend_ok)?;
    flannel_config(flags, network).map_err(|e| problems.push(e)).ok()
}

/// flannel's own rules on Network and SubnetLen, worded with our flag names.
fn flannel_config(flags: &NetworkFlags, network: Ipv4Net) -> Result<NetConfig, String> {
    let len = flags.subnet_len;
    if !(1..=30).contains(&len) {
        return Err(format!(
            "--node-cidr-mask-size {len} is out of range: a node's subnet needs room for a bridge address and pods, so 30 at most; use 24"
        ));
    }
    if len < network.prefix() + 2 {
        return Err(format!(
            "--cluster-cidr {network} is too small for --node-cidr-mask-size {len}: flannel needs room for at least four node subnets; widen the network (e.g. /{}) or use a mask size of at least {}",
            len.saturating_sub(2).max(1),
            network.prefix() + 2
        ));
    }
    let backend = if flags.backend == "host-gw" { r#"{"Type":"host-gw"}"# } else { r#"{"Type":"vxlan"}"# };
    let json = format!(r#"{{"Network":"{network}","SubnetLen":{len},"Backend":{backend}}}"#);
    NetConfig::parse(&json).map_err(|e| format!("--cluster-cidr {network} / --node-cidr-mask-size {len}: {e}"))
}

/// An etcd client URL: http(s), a host, a port.
fn check_endpoint(e: &str) -> Result<(), String> {
    let u = url::Url::parse(e).map_err(|err| format!("not a URL ({err}); write it like http://10.0.0.1:2379"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https; write it like http://10.0.0.1:2379", u.scheme()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("it has no host; write it like http://10.0.0.1:2379".to_owned());
    }
    if u.path() != "/" && !u.path().is_empty() {
        return Err(format!("etcd endpoints have no path ({:?}); write it like http://10.0.0.1:2379", u.path()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(f: impl FnOnce(&mut NetworkFlags)) -> Vec<String> {
        let mut flags = NetworkFlags::default();
        f(&mut flags);
        let mut p = Vec::new();
        let _ = check(&flags, &mut p);
        p
    }

    fn one(f: impl FnOnce(&mut NetworkFlags)) -> String {
        let p = problems(f);
        assert_eq!(p.len(), 1, "{p:?}");
        p.into_iter().next().unwrap()
    }

    #[test]
    fn defaults_are_flannels_config() {
        let mut p = Vec::new();
        let c = check(&NetworkFlags::default(), &mut p).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.network.to_string(), "172.30.0.0/16");
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.backend, rkube_net::config::Backend::Vxlan { vni: 1, port: 8472 });
        let mut flags = NetworkFlags { backend: "host-gw".into(), ..NetworkFlags::default() };
        assert_eq!(check(&flags, &mut p).unwrap().backend, rkube_net::config::Backend::HostGw);
        flags.backend = "none".into();
        assert!(check(&flags, &mut p).is_none());
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn bad_flags_name_value_and_fix() {
        let e = one(|f| f.backend = "udp".into());
        assert!(e.contains("--flannel-backend \"udp\"") && e.contains("use vxlan"), "{e}");
        let e = one(|f| f.cluster_cidr = "172.30.0.0".into());
        assert!(e.contains("--cluster-cidr \"172.30.0.0\" is not in CIDR form"), "{e}");
        let e = one(|f| f.cluster_cidr = "172.30.1.0/16".into());
        assert!(e.contains("host bits") && e.contains("172.30.0.0/16"), "{e}");
        let e = one(|f| f.cluster_cidr = "fd00::/64".into());
        assert!(e.contains("IPv4"), "{e}");
        let e = one(|f| f.cluster_cidr = "172.30.0.0/24".into());
        assert!(
            e.contains("172.30.0.0/24 is too small for --node-cidr-mask-size 24") && e.contains("at least 26"),
            "{e}"
        );
        let e = one(|f| f.subnet_len = 31);
        assert!(e.contains("--node-cidr-mask-size 31 is out of range") && e.contains("use 24"), "{e}");
        let e = one(|f| f.subnet_len = 0);
        assert!(e.contains("--node-cidr-mask-size 0 is out of range"), "{e}");
        let e = one(|f| f.iface_regex = Some("eth[".into()));
        assert!(e.contains("--flannel-iface-regex \"eth[\" is not a valid regular expression"), "{e}");
        let e = one(|f| f.etcd_endpoints = vec!["10.0.0.1:2379".into()]);
        assert!(e.contains("--flannel-etcd-endpoints \"10.0.0.1:2379\"") && e.contains("http://10.0.0.1:2379"), "{e}");
        let e = one(|f| f.etcd_endpoints = vec!["ftp://x:1".into()]);
        assert!(e.contains("scheme \"ftp\""), "{e}");
        let e = one(|f| f.etcd_prefix = "kube-centos/network".into());
        assert!(e.contains("--flannel-etcd-prefix \"kube-centos/network\" must be an absolute etcd key"), "{e}");
        let e = one(|f| f.subnet_env = "run/subnet.env".into());
        assert!(e.contains("--flannel-subnet-env run/subnet.env must be an absolute path"), "{e}");
        let e = one(|f| {
            f.backend = "none".into();
            f.etcd_endpoints = vec!["http://127.0.0.1:2379".into()];
        });
        assert!(e.contains("no use with --flannel-backend none"), "{e}");
        // Several problems are all reported at once.
        let p = problems(|f| {
            f.backend = "bogus".into();
            f.etcd_prefix = "x".into();
            f.iface_regex = Some("(".into());
        });
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn none_backend_accepts_one_node_ranges() {
        // Tests sharing the host's namespace give each node a whole /24 as its cluster network.
        assert!(
            problems(|f| {
                f.backend = "none".into();
                f.cluster_cidr = "10.231.7.0/24".into();
            })
            .is_empty()
        );
        let e = one(|f| {
            f.backend = "none".into();
            f.cluster_cidr = "10.231.7.0/24".into();
            f.subnet_len = 16;
        });
        assert!(e.contains("--node-cidr-mask-size 16 does not fit"), "{e}");
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("http://10.0.0.1:2379").is_ok());
        assert!(check_endpoint("https://etcd.example:2379/").is_ok());
        assert!(check_endpoint("http://10.0.0.1:2379/v2").is_err());
    }
}
