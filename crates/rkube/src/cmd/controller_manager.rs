//! `rkube controller-manager`: the controllers as a process of their own, reaching the API server through a
//! kubeconfig, as kube-controller-manager does (run the server with `--disable-controller-manager`).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::cmd::component;

/// Flags of `rkube controller-manager`, named as kube-controller-manager names them.
#[derive(clap::Args, Debug)]
pub(crate) struct ControllerManagerArgs {
    /// The kubeconfig to reach the API server with (its current context).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// The CA put into every namespace as the `kube-root-ca.crt` ConfigMap (default: the CA the kubeconfig trusts).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// Act only while holding the `kube-system/kube-controller-manager` Lease, so several may run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Port of the HTTPS status endpoints (/healthz, /livez, /readyz, /metrics); 0 serves none.
    #[arg(long, default_value_t = 10257)]
    secure_port: u16,
    /// Address the status endpoints listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    #[command(flatten)]
    node_controllers: crate::cmd::controllerargs::NodeControllerArgs,
}

pub(crate) fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let nodes = args.node_controllers.validate(&mut problems);
    if !problems.is_empty() {
        anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - "));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(args, nodes))
}

async fn serve(args: ControllerManagerArgs, nodes: rkube_controllers::NodesConfig) -> anyhow::Result<()> {
    let kube = rkube_client::config::from_file(&args.kubeconfig).await?;
    let root_ca_pem = match &args.root_ca_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading --root-ca-file {}", path.display()))?
        }
        None => rkube_client::config::ca_pem(&kube).with_context(|| {
            format!(
                "{} names no CA to trust, so there is none to publish as kube-root-ca.crt: give --root-ca-file",
                args.kubeconfig.display()
            )
        })?,
    };
    let health = rkube_status::Health::new(rkube_controllers::LEASE);
    let config = rkube_controllers::ControllersConfig {
        kube,
        root_ca_pem: root_ca_pem.clone(),
        identity: rkube_client::config::identity(&crate::netinfo::hostname()),
        leader_elect: args.leader_elect,
        nodes,
        health: Some(health.clone()),
    };
    let status = component::Status { bind: args.bind_address, port: args.secure_port, client_ca_pem: root_ca_pem };
    component::run("controller-manager", status, health, |stop, ready| {
        tokio::spawn(rkube_controllers::run(config, stop, ready))
    })
    .await
}
