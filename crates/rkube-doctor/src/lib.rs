//! `rkube doctor`: checks that a host can run an rkube server or agent, each finding saying what was seen and
//! the exact command that fixes it (the founding guides' pits, kubeadm's preflight and k3s's check-config).
//!
//! Every check reads the host through [`Host`], so tests feed it states (a FORWARD DROP policy, a sysctl off, a
//! port taken) without touching the machine. Exit code: 0 when nothing FAILs (WARNs are advice, as kubeadm's
//! preflight warnings are), 1 when something FAILs.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod checks;
pub mod cli;
mod clock;
pub mod host;
mod report;
mod runtime;

use std::path::PathBuf;

use serde::Serialize;

pub use host::{CmdOutput, Host, RealHost};
pub use report::{render_json, render_table};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works, but is a known pit or below a recommended floor.
    Warn,
    /// rkube cannot run (or its pods cannot talk) until this is fixed.
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The group it is shown under ("kernel", "network", ...).
    pub group: &'static str,
    /// The check's name (stable: tests and scripts match on it).
    pub check: String,
    /// OK, WARN or FAIL.
    pub status: Status,
    /// What was seen on the host.
    pub seen: String,
    /// The command (or commands) that fix it; empty for OK findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Finding {
    pub(crate) fn ok(group: &'static str, check: impl Into<String>, seen: impl Into<String>) -> Finding {
        Finding { group, check: check.into(), status: Status::Ok, seen: seen.into(), remedy: None }
    }
    pub(crate) fn warn(
        group: &'static str,
        check: impl Into<String>,
        seen: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Finding {
        Finding { group, check: check.into(), status: Status::Warn, seen: seen.into(), remedy: Some(remedy.into()) }
    }
    pub(crate) fn fail(
        group: &'static str,
        check: impl Into<String>,
        seen: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Finding {
        Finding { group, check: check.into(), status: Status::Fail, seen: seen.into(), remedy: Some(remedy.into()) }
    }
}

/// Which proxy the node will run: decides whether nftables or ip_vs are needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// iptables rules (the default).
    #[default]
    Iptables,
    /// nftables rules.
    Nftables,
    /// IPVS virtual servers.
    Ipvs,
}

/// Which component is about to start: decides the ports that must be free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// A server with its embedded agent (every port).
    #[default]
    All,
    /// A server without the agent (`--disable-agent`).
    Server,
    /// An agent only.
    Agent,
}

/// What the checks need to know beyond the host itself.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// kube-proxy's mode.
    pub proxy_mode: ProxyMode,
    /// The data directory (free space floor).
    pub data_dir: PathBuf,
    /// An API server to compare clocks with (its `/version` Date header).
    pub server: Option<String>,
    /// A CRI socket to reach (and read the cgroup driver of); `None` when rkube runs its own containerd.
    pub container_runtime_endpoint: Option<PathBuf>,
    /// Which ports matter.
    pub role: Role,
    /// The ports that must be free; `None`: rkube's defaults for `role` ([`default_ports`]). A server started
    /// on other ports passes its own.
    pub ports: Option<Vec<Port>>,
    /// Skip the port checks (a preflight run by a process that already holds them, or a restart).
    pub skip_ports: bool,
    /// Checks whose FAIL counts as a WARN (as kubeadm's `--ignore-preflight-errors`); `all` for every check.
    pub ignore: Vec<String>,
}

/// A port rkube will listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The number.
    pub port: u16,
    /// UDP rather than TCP.
    pub udp: bool,
    /// What listens there (shown in findings).
    pub what: &'static str,
    /// FAIL when taken (else WARN: only some setups need it).
    pub required: bool,
}

/// rkube's default ports for a role: 6443 and etcd's 2379–2380 (WARN only: external etcd members) on
/// servers; kubelet 10250, kube-proxy health 10256 and flannel vxlan 8472/udp on agents.
pub fn default_ports(role: Role) -> Vec<Port> {
    let p = |port, udp, what, required| Port { port, udp, what, required };
    let mut out = Vec::new();
    if matches!(role, Role::All | Role::Server) {
        out.extend([
            p(6443, false, "kube-apiserver", true),
            p(2379, false, "etcd clients (HA servers)", false),
            p(2380, false, "etcd peers (HA servers)", false),
        ]);
    }
    if matches!(role, Role::All | Role::Agent) {
        out.extend([
            p(10250, false, "kubelet API", true),
            p(10256, false, "kube-proxy health", true),
            p(8472, true, "flannel vxlan", true),
        ]);
    }
    out
}

/// Runs every host check (synchronous ones) through `host`.
pub fn check_host(host: &dyn Host, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    checks::kernel::run(host, config, &mut out);
    checks::cgroups::run(host, &mut out);
    // Forwarding, br_netfilter and rp_filter matter where pods run; a server without the agent routes none.
    if config.role != Role::Server {
        checks::sysctl::run(host, &mut out);
    }
    checks::iptables::run(host, config, &mut out);
    checks::security::run(host, &mut out);
    if !config.skip_ports {
        checks::ports::run(host, config, &mut out);
    }
    checks::binaries::run(host, config, &mut out);
    checks::resources::run(host, config, &mut out);
    out
}

/// Every check, including those that talk to the runtime and the server.
pub async fn run_all(host: &dyn Host, config: &Config) -> Vec<Finding> {
    let mut out = check_host(host, config);
    if let Some(endpoint) = &config.container_runtime_endpoint {
        out.extend(runtime::check(host, endpoint).await);
    }
    if let Some(server) = &config.server {
        out.push(clock::check(server).await);
    }
    for f in out.iter_mut().filter(|f| f.status == Status::Fail) {
        if config.ignore.iter().any(|i| i == "all" || i.eq_ignore_ascii_case(&f.check)) {
            f.status = Status::Warn;
            f.seen = format!("{} (ignored)", f.seen);
        }
    }
    out
}

/// The quiet run before `server` and `agent` start: every check on the real host; FAILs abort the start with
/// the list (the caller's job), WARNs are logged here.
pub async fn preflight(config: &Config) -> Vec<Finding> {
    let findings = run_all(&RealHost::new(), config).await;
    for f in findings.iter().filter(|f| f.status == Status::Warn) {
        tracing::warn!(check = %f.check, remedy = f.remedy.as_deref().unwrap_or(""), "preflight: {}", f.seen);
    }
    findings
}

/// The FAIL findings as one error message, or `None` when nothing failed (for `preflight`'s callers).
pub fn failures(findings: &[Finding]) -> Option<String> {
    let fails: Vec<String> = findings
        .iter()
        .filter(|f| f.status == Status::Fail)
        .map(|f| format!("{}: {} (fix: {})", f.check, f.seen, f.remedy.as_deref().unwrap_or("-")))
        .collect();
    (!fails.is_empty())
        .then(|| format!("host preflight failed (run `rkube doctor` for details):\n  {}", fails.join("\n  ")))
}

/// The process exit code for these findings: 1 when anything FAILs, else 0.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.status == Status::Fail))
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Port, Role, Status, run_all};

    #[tokio::test]
    async fn ignored_failures_become_warnings_and_roles_pick_ports() {
        let mut h = FakeHost::healthy();
        h.file("/proc/sys/net/ipv4/ip_forward", "0\n");
        let f = run_all(&h, &Config::default()).await;
        assert_eq!(crate::exit_code(&f), 1);
        assert!(crate::failures(&f).is_some_and(|m| m.contains("net.ipv4.ip_forward: net.ipv4.ip_forward = 0")));
        let config = Config { ignore: vec!["net.ipv4.ip_forward".into()], ..Config::default() };
        let f = run_all(&h, &config).await;
        assert_eq!(crate::exit_code(&f), 0);
        assert!(f.iter().any(|x| x.status == Status::Warn && x.seen.ends_with("(ignored)")));
        // A control-plane-only server forwards no pod traffic: the node's sysctls are not its business.
        let f = run_all(&h, &Config { role: Role::Server, ..Config::default() }).await;
        assert_eq!(crate::exit_code(&f), 0, "{f:?}");
        assert!(!f.iter().any(|x| x.check == "net.ipv4.ip_forward"));

        let ports = |c: &Config| -> Vec<String> {
            crate::check_host(&h, c).into_iter().filter(|x| x.group == "ports").map(|x| x.check).collect()
        };
        assert_eq!(
            ports(&Config { role: Role::Agent, ..Config::default() }),
            ["port 10250/tcp", "port 10256/tcp", "port 8472/udp"]
        );
        let custom = Config {
            ports: Some(vec![Port { port: 16443, udp: false, what: "x", required: true }]),
            ..Config::default()
        };
        assert_eq!(ports(&custom), ["port 16443/tcp"]);
    }
}
