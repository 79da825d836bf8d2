//! The `rkube` binary: parses the command line and hands each subcommand to the component crates.

mod cmd;
mod configfile;
mod logging;
mod netinfo;
mod preflight;
mod signals;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// See the workspace Cargo.toml: allocation is a large share of the API server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rkube: a Kubernetes distribution in one binary.
#[derive(Parser)]
#[command(name = "rkube", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Settings for `server` and `agent`: flag names to values (default /etc/rkube/config.yaml, or $RKUBE_CONFIG;
    /// empty: none). Flags given on the command line win over RKUBE_* variables, which win over the file.
    // Read by `configfile` before clap parses (RKUBE_CONFIG too); declared here so clap accepts it and --help
    // shows it. Not `env =`: a set RKUBE_CONFIG would count as an argument, and `rkube cluster` alone would
    // stop printing its subcommands.
    #[allow(dead_code)]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a control-plane server: store, API server, scheduler, controllers (and a node agent unless --disable-agent).
    Server(Box<cmd::server::ServerArgs>),
    /// Run the controllers as a process of their own, against a server started with --disable-controller-manager.
    ControllerManager(Box<cmd::controller_manager::ControllerManagerArgs>),
    /// Run the scheduler as a process of its own, against a server started with --disable-scheduler.
    Scheduler(Box<cmd::scheduler::SchedulerArgs>),
    /// Run a node agent that joins a server (kubelet over containerd), or clean up after one.
    Agent(Box<cmd::agent::AgentArgs>),
    /// Check this host for everything rkube needs, with the remedy for each problem found.
    Doctor(cmd::doctor::Args),
    /// Run several nodes in network namespaces on this machine.
    Cluster(cmd::cluster::ClusterArgs),
    /// Import container images from archives into a node's runtime.
    Images(cmd::images::ImagesArgs),
    /// Measure rkube's components and write the figures into BENCHMARKS.md.
    Bench(cmd::bench::BenchArgs),
    /// Install rkube as a systemd service (a unit, /etc/rkube/config.yaml) and enable it.
    Install(cmd::install::InstallArgs),
    /// Remove what `rkube install` and a running rkube made: the unit, config, rules, links, mounts and files.
    Uninstall(cmd::install::UninstallArgs),
    /// Bootstrap tokens agents join with (`K10<CA hash>::<id>.<secret>`).
    Token(cmd::token::TokenArgs),
    /// Write a consistent snapshot of the store and the PKI.
    Backup(cmd::backup::BackupArgs),
    /// Bring a fresh server's data directory back to a snapshot written by `rkube backup`.
    Restore(cmd::backup::RestoreArgs),
    /// Move the store from the embedded database to etcd, keeping every object.
    Migrate(cmd::backup::MigrateArgs),
    /// Simulated nodes (no container runtime) for testing and benchmarking the scheduler and controllers.
    Sim(cmd::sim::SimArgs),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    // Settings from /etc/rkube/config.yaml (or --config) become flags placed before the command line's own.
    let cli = Cli::parse_from(configfile::args(std::env::args_os().collect()));
    logging::init();
    let result = match cli.command {
        Command::Server(args) => cmd::server::run(*args),
        Command::ControllerManager(args) => cmd::controller_manager::run(*args),
        Command::Scheduler(args) => cmd::scheduler::run(*args),
        Command::Agent(args) => cmd::agent::run(*args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Cluster(args) => cmd::cluster::run(args),
        Command::Images(args) => cmd::images::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Install(args) => cmd::install::run(args),
        Command::Uninstall(args) => cmd::install::uninstall(args),
        Command::Token(args) => cmd::token::run(args),
        Command::Backup(args) => cmd::backup::backup(args),
        Command::Restore(args) => cmd::backup::restore(args),
        Command::Migrate(args) => cmd::backup::migrate(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Version => {
            println!("rkube {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
