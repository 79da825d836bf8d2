//! The quiet host check before `rkube server` and `rkube agent` start (issue 8: `rkube doctor` run as a
//! preflight): WARNs are logged, FAILs stop the start with their remedies, as kubeadm's preflight does.

use std::path::Path;

use clap::ValueEnum;
use rkube_doctor::{Config, Port, ProxyMode, Role};

/// Sysctls the pod network sets itself at start (rkube-net): a preflight FAIL on them would refuse a node
/// that is about to fix them, e.g. a fresh network namespace where `ip_forward` is 0.
const SET_BY_THE_NETWORK: &[&str] = &["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"];

/// Runs the checks for a node (`agent` set) and/or a server (`api_port` set) keeping state under `data_dir`;
/// `ignore` names checks whose FAIL is only a WARN (`--ignore-preflight-errors`).
pub(crate) async fn run(
    data_dir: &Path,
    api_port: Option<u16>,
    agent: Option<&rkube_agent::AgentConfig>,
    ignore: &[String],
) -> anyhow::Result<()> {
    let role = match (api_port.is_some(), agent.is_some()) {
        (true, true) => Role::All,
        (true, false) => Role::Server,
        _ => Role::Agent,
    };
    let port = |port, udp, what| Port { port, udp, what, required: true };
    let mut ports: Vec<Port> = api_port.map(|p| port(p, false, "kube-apiserver")).into_iter().collect();
    let mut ignore = ignore.to_vec();
    let mut proxy_mode = ProxyMode::Iptables;
    if let Some(a) = agent {
        ports.push(port(a.kubelet_port, false, "kubelet API"));
        if a.network.flags.backend != "none" {
            ignore.extend(SET_BY_THE_NETWORK.iter().map(|s| (*s).to_owned()));
        }
        // A restarting node's own flannel.1 holds 8472/udp (kept up so its pods stay connected).
        if a.network.flags.backend == "vxlan" && !rkube_agent::network::vxlan_device_present().await {
            ports.push(port(8472, true, "flannel vxlan"));
        }
        let services = &a.services.flags;
        if !services.disable_proxy {
            proxy_mode = ProxyMode::from_str(&services.proxy_mode, true).unwrap_or_default();
            if services.proxy_metrics_port != 0 {
                ports.push(port(services.proxy_metrics_port, false, "kube-proxy metrics"));
            }
        }
    }
    let config = Config {
        proxy_mode,
        data_dir: data_dir.to_path_buf(),
        server: None,
        // The agent reads and compares the runtime's cgroup driver itself, with its own message.
        container_runtime_endpoint: None,
        role,
        ports: Some(ports),
        skip_ports: false,
        ignore,
    };
    let findings = rkube_doctor::preflight(&config).await;
    match rkube_doctor::failures(&findings) {
        Some(message) => anyhow::bail!("{message}\n(pass --ignore-preflight-errors=<check>,... to start anyway)"),
        None => Ok(()),
    }
}
