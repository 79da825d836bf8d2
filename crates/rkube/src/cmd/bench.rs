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
    };
    rkube_bench::report::write_section(&args.output, name, &section)?;
    println!("{section}");
    eprintln!("[bench] wrote the {name} section of {}", args.output.display());
    Ok(())
}
