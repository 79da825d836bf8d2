//! The `rkube doctor` command line: flags, the run, the exit code.

use std::path::PathBuf;

use crate::{Config, ProxyMode, RealHost, Role};

/// Flags of `rkube doctor`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print JSON (`findings`, `summary`, `exitCode`) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// kube-proxy's mode: ipvs adds the ip_vs and dummy modules (and ipvsadm), nftables adds nf_tables and nft.
    #[arg(long, value_enum, default_value = "iptables", env = "RKUBE_PROXY_MODE")]
    pub proxy_mode: ProxyMode,
    /// The data directory whose free space is checked.
    #[arg(long, default_value = "/var/lib/rkube", env = "RKUBE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// An API server (https://IP:6443) to compare this machine's clock with.
    #[arg(long, env = "RKUBE_SERVER")]
    pub server: Option<String>,
    /// A CRI runtime's socket to reach and compare cgroup drivers with.
    #[arg(long, env = "RKUBE_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Check only what a server without an agent needs, or only what an agent needs.
    #[arg(long, value_enum, default_value = "all")]
    pub role: Role,
    /// Checks whose FAIL is only a WARN (comma-separated check names as shown, or `all`).
    #[arg(long, value_delimiter = ',')]
    pub ignore_preflight_errors: Vec<String>,
}

impl Args {
    /// The checks' configuration.
    pub fn config(&self) -> Config {
        let endpoint =
            self.container_runtime_endpoint.as_deref().map(|e| PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)));
        Config {
            proxy_mode: self.proxy_mode,
            data_dir: self.data_dir.clone(),
            server: self.server.clone(),
            container_runtime_endpoint: endpoint,
            role: self.role,
            ports: None,
            skip_ports: false,
            ignore: self.ignore_preflight_errors.clone(),
        }
    }
}

/// Runs every check, prints the report to stdout and returns the exit code: 0 when nothing FAILs (WARNs
/// included, as kubeadm's preflight treats warnings), 1 when something FAILs.
pub async fn run(args: &Args) -> i32 {
    let findings = crate::run_all(&RealHost::new(), &args.config()).await;
    let text = if args.json { crate::render_json(&findings) } else { crate::render_table(&findings) };
    println!("{}", text.trim_end());
    crate::exit_code(&findings)
}
