//! `rkube sim`: simulated cluster members for tests and benchmarks (nodes without a container runtime).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// What to simulate.
#[derive(clap::Args, Debug)]
pub(crate) struct SimArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Register N nodes that stay Ready (renewed Leases) and run the pods bound to them, until SIGTERM/SIGINT.
    /// The nodes stay registered afterwards; their Leases then expire.
    Nodes(NodesArgs),
}

#[derive(clap::Args, Debug)]
struct NodesArgs {
    /// The kubeconfig to reach the API server with (its current context).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// How many nodes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Node names are <prefix><index>.
    #[arg(long, default_value = "sim-")]
    name_prefix: String,
    /// The index of the first node (to run several processes with disjoint nodes).
    #[arg(long, default_value_t = 0)]
    first_index: usize,
    /// CPU capacity of each node.
    #[arg(long, default_value = "32")]
    cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "256Gi")]
    memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value = "110")]
    pods: String,
    /// Ephemeral-storage capacity of each node.
    #[arg(long, default_value = "100Gi")]
    ephemeral_storage: String,
    /// A label to add to every node, key=value (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    labels: Vec<(String, String)>,
    /// A taint for every node, key=value:Effect or key:Effect (repeatable).
    #[arg(long = "taint", value_name = "KEY=VALUE:EFFECT", value_parser = taint)]
    taints: Vec<rkube_simnode::Taint>,
    /// How often each node renews its Lease.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    renew_interval: Duration,
    /// The Leases' leaseDurationSeconds.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(i32).range(1..))]
    lease_duration: i32,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
}

fn label(s: &str) -> Result<(String, String), String> {
    rkube_simnode::parse_label(s)
}

fn taint(s: &str) -> Result<rkube_simnode::Taint, String> {
    rkube_simnode::parse_taint(s)
}

pub(crate) fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.what {
        What::Nodes(a) => nodes(a),
    }
}

fn nodes(a: NodesArgs) -> anyhow::Result<()> {
    let count = a.count as usize;
    let progress: rkube_simnode::Progress = Arc::new(move |n| {
        if n % 1000 == 0 || n == count {
            println!("registered {n}/{count} nodes");
            let _ = std::io::stdout().flush();
        }
    });
    let config = rkube_simnode::SimConfig {
        count,
        name_prefix: a.name_prefix,
        first_index: a.first_index,
        cpu: a.cpu,
        memory: a.memory,
        pods: a.pods,
        ephemeral_storage: a.ephemeral_storage,
        labels: a.labels.into_iter().collect(),
        taints: a.taints,
        lease_duration_seconds: a.lease_duration,
        renew_interval: a.renew_interval,
        max_in_flight: a.max_in_flight as usize,
        pod_workers: a.max_in_flight as usize,
        progress: Some(progress),
        ..rkube_simnode::SimConfig::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async move {
        let client = rkube_simnode::client_from_kubeconfig(&a.kubeconfig).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let started = Instant::now();
        let sim = tokio::spawn(rkube_simnode::run(client, config, stop_rx, Some(ready_tx)));
        tokio::spawn(async move {
            if ready_rx.await.is_ok() {
                println!("{count} simulated nodes ready");
                let _ = std::io::stdout().flush();
                eprintln!("[sim] registered {count} nodes in {:.1} s", started.elapsed().as_secs_f64());
            }
        });
        tokio::spawn(async move {
            crate::signals::terminated().await;
            let _ = stop_tx.send(true);
        });
        sim.await.context("the simulated nodes task")??;
        eprintln!("[sim] stopped; the nodes stay registered and their leases will expire");
        Ok(())
    });
    // Nothing left to finish: connection tasks and timers need not be waited for.
    runtime.shutdown_background();
    result
}
