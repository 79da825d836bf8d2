//! The agent's configuration: raw flag values in, a validated [`AgentConfig`] out, every problem reported at once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::resources::Reserved;
use crate::{Error, Result};

/// The flags of `rkube agent` and of `rkube server`'s agent, as given (defaults already filled in by the CLI).
#[derive(Clone, Debug)]
pub struct Flags {
    /// `--data-dir`: the agent keeps its state under `<data-dir>/agent`.
    pub data_dir: PathBuf,
    /// `--node-name` (the CLI defaults it to the hostname).
    pub node_name: String,
    /// `--node-ip` (the CLI defaults it to the default-route interface's address).
    pub node_ip: IpAddr,
    /// `--container-runtime-endpoint`: an existing CRI socket instead of a supervised containerd.
    pub container_runtime_endpoint: Option<String>,
    /// `--cluster-dns`.
    pub cluster_dns: Vec<IpAddr>,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// `--kube-reserved` (`cpu=100m,memory=256Mi`).
    pub kube_reserved: String,
    /// `--system-reserved`.
    pub system_reserved: String,
    /// `--kubelet-port`.
    pub kubelet_port: u16,
    /// `--cni-bridge`.
    pub cni_bridge: String,
    /// `--cni-conf-dir`: where the runtime reads CNI configs (default: the supervised containerd's
    /// `<agent dir>/cni/net.d`, or containerd's default `/etc/cni/net.d` with `--container-runtime-endpoint`).
    pub cni_conf_dir: Option<PathBuf>,
    /// `--node-label key=value` (repeatable).
    pub node_labels: Vec<String>,
    /// `--max-pods`.
    pub max_pods: u32,
    /// `--resolv-conf`: the host's resolver configuration (pods with `dnsPolicy: Default`, the search path,
    /// and the cluster DNS's upstream resolvers).
    pub resolv_conf: PathBuf,
    /// The pod network's flags.
    pub network: crate::network::NetworkFlags,
    /// The service proxy's and DNS's flags.
    pub services: crate::services::ServicesFlags,
}

/// Where the container runtime comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeSource {
    /// The agent starts and supervises its own containerd under `<agent dir>/containerd`.
    Supervised,
    /// An existing runtime's CRI socket (`--container-runtime-endpoint`).
    Endpoint(PathBuf),
}

/// The validated agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The node's name.
    pub node_name: String,
    /// The node's InternalIP.
    pub node_ip: IpAddr,
    /// `<data-dir>/agent`: containerd, CNI config and state, pods, pod logs.
    pub agent_dir: PathBuf,
    /// The container runtime.
    pub runtime: RuntimeSource,
    /// Cluster DNS servers for pods.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster domain.
    pub cluster_domain: String,
    /// What Kubernetes components reserve.
    pub kube_reserved: Reserved,
    /// What the operating system reserves.
    pub system_reserved: Reserved,
    /// Port of the agent API (upstream's kubelet port).
    pub kubelet_port: u16,
    /// The CNI bridge device name.
    pub cni_bridge: String,
    /// Where the conflist is written: the directory the runtime's CRI plugin loads CNI configs from.
    pub cni_conf_dir: PathBuf,
    /// Labels set on the node besides the well-known ones.
    pub node_labels: BTreeMap<String, String>,
    /// The node's `pods` capacity.
    pub max_pods: u32,
    /// The pod network.
    pub network: crate::network::NetworkConfig,
    /// The service proxy and DNS.
    pub services: crate::services::ServicesConfig,
    /// The host's resolv.conf (pods with `dnsPolicy: Default`, and the search path).
    pub resolv_conf: PathBuf,
    /// TLS of the agent API (serving certificate, client certificates required from the cluster CA). Set by the
    /// caller once the identity exists; [`crate::run`] refuses to start without it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Default `--kube-reserved` and `--system-reserved`.
pub const DEFAULT_RESERVED: &str = "cpu=100m,memory=256Mi";

impl AgentConfig {
    /// Validates `flags`; the error lists every problem, one per line.
    pub fn from_flags(flags: &Flags) -> Result<AgentConfig> {
        let mut problems = Vec::new();
        if flags.data_dir.as_os_str().is_empty() {
            problems.push("--data-dir is empty; give a directory such as /var/lib/rkube".to_owned());
        }
        if !is_dns_subdomain(&flags.node_name) {
            problems.push(format!(
                "--node-name {:?} is not a lowercase DNS name (letters, digits, '-' and '.', at most 253)",
                flags.node_name
            ));
        }
        if flags.node_ip.is_unspecified() {
            problems.push(format!("--node-ip {} is not an address other hosts can reach", flags.node_ip));
        }
        let runtime = match flags.container_runtime_endpoint.as_deref() {
            None => RuntimeSource::Supervised,
            Some(e) => match e.split_once("://") {
                Some(("unix", p)) if p.starts_with('/') => RuntimeSource::Endpoint(PathBuf::from(p)),
                None if e.starts_with('/') => RuntimeSource::Endpoint(PathBuf::from(e)),
                _ => {
                    problems.push(format!(
                        "--container-runtime-endpoint {e:?} is not a unix socket; write /run/x.sock or unix:///run/x.sock"
                    ));
                    RuntimeSource::Supervised
                }
            },
        };
        if flags.cluster_dns.is_empty() {
            problems.push("--cluster-dns is empty; give the cluster DNS service IP (default 10.254.0.2)".to_owned());
        }
        if !is_dns_subdomain(&flags.cluster_domain) {
            problems
                .push(format!("--cluster-domain {:?} must be a DNS domain like cluster.local", flags.cluster_domain));
        }
        let kube_reserved = Reserved::parse(&flags.kube_reserved).unwrap_or_else(|e| {
            problems.push(format!("--kube-reserved {:?}: {e}", flags.kube_reserved));
            Reserved::default()
        });
        let system_reserved = Reserved::parse(&flags.system_reserved).unwrap_or_else(|e| {
            problems.push(format!("--system-reserved {:?}: {e}", flags.system_reserved));
            Reserved::default()
        });
        if flags.kubelet_port == 0 {
            problems.push("--kubelet-port must not be 0 (upstream's is 10250)".to_owned());
        }
        if let Err(e) = check_link_name(&flags.cni_bridge) {
            problems.push(format!("--cni-bridge {:?}: {e}", flags.cni_bridge));
        }
        let mut node_labels = BTreeMap::new();
        for l in &flags.node_labels {
            match parse_label(l) {
                Ok((k, v)) => {
                    node_labels.insert(k, v);
                }
                Err(e) => problems.push(format!("--node-label {l:?}: {e}")),
            }
        }
        if !flags.resolv_conf.is_absolute() {
            problems.push(format!("--resolv-conf {:?} must be an absolute path", flags.resolv_conf));
        }
        if flags.max_pods == 0 {
            problems.push("--max-pods must be at least 1 (upstream's default is 110)".to_owned());
        }
        if flags.cni_conf_dir.as_ref().is_some_and(|d| !d.is_absolute()) {
            problems.push("--cni-conf-dir must be an absolute path".to_owned());
        }
        let cni_conf_dir = match (&flags.cni_conf_dir, &runtime) {
            (Some(d), _) => d.clone(),
            (None, RuntimeSource::Supervised) => flags.data_dir.join("agent").join("cni").join("net.d"),
            (None, RuntimeSource::Endpoint(_)) => PathBuf::from("/etc/cni/net.d"),
        };
        let network = crate::network::NetworkConfig::from_flags(&flags.network, &mut problems);
        let services = crate::services::ServicesConfig::from_flags(&flags.services, &mut problems);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")));
        }
        Ok(AgentConfig {
            node_name: flags.node_name.clone(),
            node_ip: flags.node_ip,
            agent_dir: flags.data_dir.join("agent"),
            runtime,
            cluster_dns: flags.cluster_dns.clone(),
            cluster_domain: flags.cluster_domain.clone(),
            kube_reserved,
            system_reserved,
            kubelet_port: flags.kubelet_port,
            cni_bridge: flags.cni_bridge.clone(),
            cni_conf_dir,
            node_labels,
            max_pods: flags.max_pods,
            network,
            services,
            resolv_conf: flags.resolv_conf.clone(),
            tls: None,
        })
    }

    /// The supervised containerd's directory.
    pub fn containerd_dir(&self) -> PathBuf {
        self.agent_dir.join("containerd")
    }

    /// The CRI socket: the given endpoint, or the supervised containerd's.
    pub fn runtime_socket(&self) -> PathBuf {
        match &self.runtime {
            RuntimeSource::Endpoint(p) => p.clone(),
            RuntimeSource::Supervised => supervised_socket(&self.agent_dir),
        }
    }

    /// Where the CNI conflist is written (the runtime's CNI conf dir).
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.cni_conf_dir.clone()
    }

    /// host-local IPAM's allocation state.
    pub fn cni_ipam_dir(&self) -> PathBuf {
        self.agent_dir.join("cni").join("networks")
    }

    /// Per-pod directories.
    pub fn pods_dir(&self) -> PathBuf {
        self.agent_dir.join("pods")
    }

    /// Container logs.
    pub fn pod_logs_dir(&self) -> PathBuf {
        self.agent_dir.join("pod-logs")
    }
}

/// The socket of the containerd an agent with `agent_dir` supervises (what `rkube images` and `agent clean` use).
pub fn supervised_socket(agent_dir: &std::path::Path) -> PathBuf {
    agent_dir.join("containerd").join("containerd.sock")
}

/// Whether `s` is a lowercase RFC 1123 subdomain (node names, domains).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A network interface name the kernel accepts (IFNAMSIZ: at most 15 bytes, no '/', ':' or spaces).
fn check_link_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("an interface name has 1 to 15 characters");
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.') {
        return Err("an interface name holds only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// `key=value` with upstream's label key and value syntax (`prefix/name`, values up to 63 characters).
fn parse_label(l: &str) -> std::result::Result<(String, String), String> {
    let Some((key, value)) = l.split_once('=') else { return Err("write it as key=value".to_owned()) };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 63
            && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
            && n.as_bytes()[0].is_ascii_alphanumeric()
            && n.as_bytes()[n.len() - 1].is_ascii_alphanumeric()
    };
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err(format!("the key's prefix {p:?} must be a lowercase DNS subdomain"));
    }
    if !name_ok(name) {
        return Err(format!(
            "the key's name {name:?} must be 1 to 63 alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!(
            "the value {value:?} must be empty or 1 to 63 alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            data_dir: PathBuf::from("/var/lib/rkube"),
            node_name: "node-1".into(),
            node_ip: "192.168.1.5".parse().unwrap(),
            container_runtime_endpoint: None,
            cluster_dns: vec!["10.254.0.2".parse().unwrap()],
            cluster_domain: "cluster.local".into(),
            kube_reserved: DEFAULT_RESERVED.into(),
            system_reserved: DEFAULT_RESERVED.into(),
            kubelet_port: 10250,
            cni_bridge: "cni0".into(),
            cni_conf_dir: None,
            node_labels: vec!["role=db".into(), "example.com/zone=a".into()],
            max_pods: 110,
            resolv_conf: "/etc/resolv.conf".into(),
            network: crate::network::NetworkFlags::default(),
            services: crate::services::ServicesFlags::default(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = AgentConfig::from_flags(&flags()).unwrap();
        assert_eq!(c.agent_dir, PathBuf::from("/var/lib/rkube/agent"));
        assert_eq!(c.runtime, RuntimeSource::Supervised);
        assert_eq!(c.runtime_socket(), PathBuf::from("/var/lib/rkube/agent/containerd/containerd.sock"));
        assert_eq!(c.kube_reserved.cpu_milli, 100);
        assert_eq!(c.kube_reserved.memory, 256 << 20);
        assert_eq!(c.node_labels.get("example.com/zone").map(String::as_str), Some("a"));
        assert_eq!(c.cni_conf_dir(), PathBuf::from("/var/lib/rkube/agent/cni/net.d"));
    }

    #[test]
    fn endpoint_forms() {
        let mut f = flags();
        f.container_runtime_endpoint = Some("unix:///run/containerd/containerd.sock".into());
        let c = AgentConfig::from_flags(&f).unwrap();
        assert_eq!(c.runtime_socket(), PathBuf::from("/run/containerd/containerd.sock"));
        assert_eq!(c.cni_conf_dir(), PathBuf::from("/etc/cni/net.d"));
        f.cni_conf_dir = Some("/run/x/net.d".into());
        assert_eq!(AgentConfig::from_flags(&f).unwrap().cni_conf_dir(), PathBuf::from("/run/x/net.d"));
        f.container_runtime_endpoint = Some("/run/c.sock".into());
        assert_eq!(AgentConfig::from_flags(&f).unwrap().runtime, RuntimeSource::Endpoint("/run/c.sock".into()));
    }

    #[test]
    fn every_problem_at_once() {
        let mut f = flags();
        f.node_name = "Node_1".into();
        f.container_runtime_endpoint = Some("tcp://1.2.3.4:1".into());
        f.cluster_domain = ".local".into();
        f.kube_reserved = "cpu=lots".into();
        f.system_reserved = "gpu=1".into();
        f.kubelet_port = 0;
        f.cni_bridge = "a-very-long-bridge-name".into();
        f.node_labels = vec!["novalue".into(), "-bad=x".into()];
        f.max_pods = 0;
        f.cni_conf_dir = Some("net.d".into());
        let err = AgentConfig::from_flags(&f).unwrap_err().to_string();
        for needle in [
            "--node-name \"Node_1\"",
            "--container-runtime-endpoint \"tcp://",
            "--cluster-domain",
            "--kube-reserved \"cpu=lots\"",
            "--system-reserved \"gpu=1\"",
            "--kubelet-port",
            "--cni-bridge",
            "--node-label \"novalue\"",
            "--node-label \"-bad=x\"",
            "--max-pods",
            "--cni-conf-dir",
        ] {
            assert!(err.contains(needle), "{needle} missing from:\n{err}");
        }
        assert_eq!(err.lines().count(), 12, "{err}");
    }

    #[test]
    fn labels() {
        assert!(parse_label("a=b").is_ok());
        assert!(parse_label("a=").is_ok());
        assert!(parse_label("Example.com/a=b").is_err());
        assert!(parse_label("a=b c").is_err());
        assert!(parse_label(&format!("a={}", "x".repeat(64))).is_err());
    }
}
