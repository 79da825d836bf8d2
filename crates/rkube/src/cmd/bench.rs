//! `rkube bench`: measurements written into BENCHMARKS.md.

use std::path::PathBuf;

/// Which benchmark to run, and where its figures go.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: What,
    /// The Markdown file whose section the benchmark rewrites.
    #[arg(long, global = true, default_value = "BENCHMARKS.md")]
    output: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// The store backends side by side: creates/s, gets/s, watch latency, for SQLite and etcd.
    Store(StoreBenchArgs),
    /// The API server under load from kube-rs clients, on SQLite and on etcd, against upstream's figures.
    Api(ApiBenchArgs),
    /// The scheduler and controllers with thousands of simulated nodes: pods bound/s, a large Deployment's
    /// time to Running, the server's memory.
    Scheduling(SchedulingBenchArgs),
    /// The node agent on a real containerd: pod start-up latency, the server's memory with pods running, the
    /// CPU of an idle node.
    Node(NodeBenchArgs),
}

#[derive(clap::Args, Debug)]
struct NodeBenchArgs {
    /// Pods created at once.
    #[arg(long, default_value_t = 30)]
    pods: usize,
    /// Single pods started one after another once the batch is deleted.
    #[arg(long, default_value_t = 3)]
    single_runs: usize,
    /// How long the node idles with the pods running, for the CPU measure.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle: std::time::Duration,
}

#[derive(clap::Args, Debug)]
struct SchedulingBenchArgs {
    /// Simulated node counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000])]
    nodes: Vec<usize>,
    /// Pods created in each run.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Replicas of the timed Deployment.
    #[arg(long, default_value_t = 1000)]
    replicas: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 32)]
    clients: usize,
}

#[derive(clap::Args, Debug)]
struct ApiBenchArgs {
    /// Creates by one client (the concurrent measures do five times as many).
    #[arg(long, default_value_t = 1000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// ConfigMaps in the list measure.
    #[arg(long, default_value_t = 3000)]
    list_size: usize,
    /// Watchers in the fan-out measure.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// ConfigMaps held for the memory measure.
    #[arg(long, default_value_t = 10_000)]
    held: usize,
    /// The etcd binary for the etcd run.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_binary: PathBuf,
}

#[derive(clap::Args, Debug)]
struct StoreBenchArgs {
    /// Operations done by one client (the concurrent measures do four times as many).
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Writes timed for watch delivery latency.
    #[arg(long, default_value_t = 500)]
    watch_ops: usize,
    /// The etcd binary to benchmark against.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_binary: PathBuf,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (name, section) = match args.what {
        What::Store(a) => {
            let config = rkube_bench::store::StoreBenchConfig {
                ops: a.ops,
                clients: a.clients,
                watch_ops: a.watch_ops,
                etcd_binary: a.etcd_binary,
            };
            ("store", runtime.block_on(rkube_bench::store::run(&config))?)
        }
        What::Api(a) => {
            let config = rkube_bench::api::ApiBenchConfig {
                rkube: std::env::current_exe()?,
                etcd_binary: a.etcd_binary,
                ops: a.ops,
                clients: a.clients,
                list_size: a.list_size,
                watchers: a.watchers,
                held: a.held,
            };
            ("api", runtime.block_on(rkube_bench::api::run(&config))?)
        }
        What::Scheduling(a) => {
            let config = rkube_bench::scheduling::SchedulingBenchConfig {
                rkube: std::env::current_exe()?,
                nodes: a.nodes,
                pods: a.pods,
                replicas: a.replicas,
                clients: a.clients,
            };
            ("scheduling", runtime.block_on(rkube_bench::scheduling::run(&config))?)
        }
        What::Node(a) => {
            let config = rkube_bench::node::NodeBenchConfig {
                rkube: std::env::current_exe()?,
                pods: a.pods,
                single_runs: a.single_runs,
                idle: a.idle,
            };
            ("node", runtime.block_on(rkube_bench::node::run(&config))?)
        }
    };
    rkube_bench::report::write_section(&args.output, name, &section)?;
    println!("{section}");
    eprintln!("[bench] wrote the {name} section of {}", args.output.display());
    Ok(())
}
