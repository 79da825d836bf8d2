//! `rkube scheduler`: the scheduler as a process of its own, reaching the API server through a kubeconfig,
//! as kube-scheduler does (run the server with `--disable-scheduler`).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::cmd::component;

/// Flags of `rkube scheduler`, named as kube-scheduler names them.
#[derive(clap::Args, Debug)]
pub(crate) struct SchedulerArgs {
    /// The kubeconfig to reach the API server with (its current context).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Act only while holding the `kube-system/kube-scheduler` Lease, so several may run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Port of the HTTPS status endpoints (/healthz, /livez, /readyz, /metrics); 0 serves none.
    #[arg(long, default_value_t = 10259)]
    secure_port: u16,
    /// Address the status endpoints listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Client certificates this CA signed may read /metrics (default: the CA the kubeconfig trusts).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
}

pub(crate) fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(args))
}

async fn serve(args: SchedulerArgs) -> anyhow::Result<()> {
    let kube = rkube_client::config::from_file(&args.kubeconfig).await?;
    let client_ca_pem = match &args.client_ca_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading --client-ca-file {}", path.display()))?
        }
        None if args.secure_port == 0 => String::new(),
        None => rkube_client::config::ca_pem(&kube).with_context(|| {
            format!(
                "{} names no CA to trust /metrics clients by: give --client-ca-file (or --secure-port 0)",
                args.kubeconfig.display()
            )
        })?,
    };
    let health = rkube_status::Health::new(rkube_scheduler::LEASE);
    let config = rkube_scheduler::SchedulerConfig {
        kube,
        identity: rkube_client::config::identity(&crate::netinfo::hostname()),
        leader_elect: args.leader_elect,
        health: Some(health.clone()),
    };
    let status = component::Status { bind: args.bind_address, port: args.secure_port, client_ca_pem };
    component::run("scheduler", status, health, |stop, ready| tokio::spawn(rkube_scheduler::run(config, stop, ready)))
        .await
}
