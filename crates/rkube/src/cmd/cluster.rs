//! `rkube cluster`: several nodes on this machine, each in its own network namespace (see `rkube-cluster`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// Flags of `rkube cluster`.
#[derive(clap::Args, Debug)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create a cluster: a network namespace with a bridge, a namespace per node, node n1 the server, the
    /// others agents joining it. Prints the kubeconfig's path.
    Up(UpArgs),
    /// Remove a cluster: its processes, pods, mounts, namespaces and state directory.
    Down(NameArgs),
    /// List the clusters.
    List(ParentArgs),
    /// Print the path of a cluster's admin kubeconfig.
    Kubeconfig(NameArgs),
    /// Import image archives into every node (as `kind load image-archive`).
    Load {
        #[command(flatten)]
        cluster: NameArgs,
        /// The archives (OCI layout or docker-archive tars).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a command inside a node's network namespace: rkube cluster exec <cluster> <node> -- <command>...
    Exec {
        #[command(flatten)]
        cluster: NameArgs,
        /// The node (n1, n2, ... or 1, 2, ...).
        node: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Kill a node's rkube process and its containerd with SIGKILL, as a crash would (pods keep running); or an
    /// etcd member (etcd1, etcd2, ...).
    Stop {
        #[command(flatten)]
        cluster: NameArgs,
        /// The node (n1, n2, ...) or etcd member (etcd1, ...).
        node: String,
    },
    /// Start a stopped node (or etcd member) again, with the flags and data directory it had.
    Start {
        #[command(flatten)]
        cluster: NameArgs,
        /// The node (n1, n2, ...) or etcd member (etcd1, ...).
        node: String,
        /// How long the node may take to be ready, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Add a node that joins with a bootstrap token (`rkube token create` through the cluster's kubeconfig), as
    /// a new machine would: it gets its certificates by CSR from the servers.
    Join {
        #[command(flatten)]
        cluster: NameArgs,
        /// The join token, `K10<CA hash>::<id>.<secret>`.
        #[arg(long)]
        token: String,
        /// An extra flag for the new node's `rkube agent` (repeatable).
        #[arg(long = "node-arg", allow_hyphen_values = true)]
        extra: Vec<String>,
        /// How long the node may take to be ready, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The API forwarder `up` starts (host loopback to the servers' API, failing over among them).
    #[command(hide = true)]
    Forward {
        /// Node n1's namespace.
        #[arg(long)]
        netns: String,
        /// The API servers' addresses seen from it, in order of preference (repeatable).
        #[arg(long, required = true)]
        to: Vec<std::net::SocketAddr>,
        /// Where to write the port it listens on.
        #[arg(long)]
        port_file: PathBuf,
    },
}

/// Where clusters are kept.
#[derive(clap::Args, Debug)]
struct ParentArgs {
    /// The directory holding the clusters' state directories.
    #[arg(long, env = rkube_cluster::layout::PARENT_ENV, default_value = rkube_cluster::layout::DEFAULT_PARENT)]
    clusters_dir: PathBuf,
}

/// A cluster by name.
#[derive(clap::Args, Debug)]
struct NameArgs {
    /// The cluster's name.
    name: String,
    #[command(flatten)]
    parent: ParentArgs,
}

impl NameArgs {
    fn layout(&self) -> anyhow::Result<rkube_cluster::Layout> {
        Ok(rkube_cluster::Layout::new(&self.parent.clusters_dir, &self.name)?)
    }
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// How many Kubernetes nodes. With one server, n1 is the server (with its embedded agent) and the others
    /// agents; with --servers N > 1, n1..nN are the control plane only and this many agents follow.
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// How many API servers (n1..nN), all on the cluster's etcd (needs --etcd-members); agents and kubectl fail
    /// over among them.
    #[arg(long, default_value_t = 1)]
    servers: u32,
    /// Run an etcd cluster of this many members (Debian's etcd, 192.168.77.2 onwards) in the cluster's network.
    #[arg(long, default_value_t = 0)]
    etcd_members: u32,
    /// The cluster's name (up to 16 of a-z, 0-9, '-').
    #[arg(long, default_value = "rkube")]
    name: String,
    /// Pod network backend: vxlan, host-gw, or none (node-local bridges: no pod traffic between nodes).
    #[arg(long, default_value = "vxlan")]
    backend: String,
    /// Run etcd (Debian's) in the cluster's network: the server's store and flannel's subnet leases (one member
    /// unless --etcd-members).
    #[arg(long)]
    etcd: bool,
    /// The service proxy's mode on every node (iptables, nftables, ipvs).
    #[arg(long)]
    proxy_mode: Option<String>,
    /// No service proxy and no cluster DNS on the nodes (--disable-proxy --disable-dns).
    #[arg(long)]
    no_services: bool,
    /// Another flag for every node's rkube (repeatable), e.g. --node-arg=--max-pods=20.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// The cluster's state directory (default <clusters-dir>/<name>).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How long each node may take to be ready, in seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    #[command(flatten)]
    parent: ParentArgs,
}

fn rkube_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the rkube binary")
}

pub(crate) fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Up(a) => {
            let options = rkube_cluster::UpOptions {
                name: a.name.clone(),
                nodes: a.nodes,
                // Absolute: the nodes' flags hold these paths, and `start` may run from another directory.
                state_dir: Some(
                    std::path::absolute(a.state_dir.clone().unwrap_or_else(|| a.parent.clusters_dir.join(&a.name)))
                        .context("resolving the state directory")?,
                ),
                node: rkube_cluster::nodes::NodeOptions {
                    backend: a.backend,
                    etcd_members: if a.etcd_members == 0 && a.etcd { 1 } else { a.etcd_members },
                    servers: a.servers,
                    services: !a.no_services,
                    proxy_mode: a.proxy_mode,
                    extra: a.node_args,
                },
                rkube: rkube_binary()?,
                timeout: Duration::from_secs(a.timeout),
            };
            link_state_dir(&a.parent.clusters_dir, &a.name, a.state_dir.as_deref())?;
            let started = std::time::Instant::now();
            let layout = match rkube_cluster::up::up(&options, &mut |line| eprintln!("{line}")) {
                Ok(l) => l,
                Err(e) => {
                    // The state directory went with the failed cluster; so goes the link to it.
                    let link = a.parent.clusters_dir.join(&a.name);
                    if a.state_dir.is_some() && link.is_symlink() {
                        let _ = std::fs::remove_file(&link);
                    }
                    return Err(e.into());
                }
            };
            eprintln!(
                "cluster {} is up ({} server(s), {} node(s), {:.0} s). Use kubectl with:\n  export KUBECONFIG={}",
                layout.name,
                options.node.servers,
                options.nodes,
                started.elapsed().as_secs_f64(),
                layout.kubeconfig().display()
            );
            println!("{}", layout.kubeconfig().display());
            Ok(())
        }
        Action::Down(n) => {
            let layout = n.layout()?;
            let layout = resolved(layout)?;
            let namespaces = rkube_cluster::net::namespaces()?;
            let any_ns = namespaces.iter().any(|ns| *ns == layout.cluster_netns() || layout.is_node_netns(ns));
            if !layout.dir.exists() && !any_ns {
                anyhow::bail!("no cluster {:?}: `rkube cluster list` shows the clusters", layout.name);
            }
            let removed = rkube_cluster::down::down(&layout, &rkube_binary()?)?;
            eprintln!(
                "cluster {} removed: {} process(es) stopped, {} node(s) cleaned, {} namespace(s) deleted",
                layout.name,
                removed.processes.len(),
                removed.nodes.len(),
                removed.namespaces.len()
            );
            // A cluster made with --state-dir elsewhere is found through a link in the clusters' directory.
            let link = n.parent.clusters_dir.join(&n.name);
            if link.is_symlink() {
                std::fs::remove_file(&link).with_context(|| format!("deleting {}", link.display()))?;
            }
            Ok(())
        }
        Action::List(p) => {
            let clusters = rkube_cluster::state::list(&p.clusters_dir)?;
            println!("{:<18} {:<6} {:<8} {:<5} {:<8} KUBECONFIG", "NAME", "NODES", "BACKEND", "ETCD", "RUNNING");
            for c in clusters {
                let (nodes, backend, etcd) = match &c.state {
                    Some(s) => (s.nodes.to_string(), s.backend.clone(), s.members().to_string()),
                    None => ("?".into(), "?".into(), "?".into()),
                };
                println!(
                    "{:<18} {:<6} {:<8} {:<5} {:<8} {}",
                    c.name,
                    nodes,
                    backend,
                    etcd,
                    format!("{}/{}", c.running, nodes),
                    c.kubeconfig.display()
                );
            }
            Ok(())
        }
        Action::Kubeconfig(n) => {
            let layout = existing(&n)?;
            rkube_cluster::ClusterState::load(&layout)?;
            println!("{}", layout.kubeconfig().display());
            Ok(())
        }
        Action::Load { cluster, files } => {
            let layout = existing(&cluster)?;
            for line in rkube_cluster::nodes::load(&layout, &rkube_binary()?, &files)? {
                println!("{line}");
            }
            Ok(())
        }
        Action::Exec { cluster, node, command } => {
            let layout = existing(&cluster)?;
            let status = rkube_cluster::nodes::exec(&layout, &node, &command)?;
            match status.code() {
                Some(0) => Ok(()),
                // The command's own exit code, as `kubectl exec` and `docker exec` pass it on.
                Some(code) => std::process::exit(code),
                None => anyhow::bail!("{} was killed ({status})", command.join(" ")),
            }
        }
        Action::Stop { cluster, node } => {
            let layout = existing(&cluster)?;
            let pids = rkube_cluster::nodes::stop(&layout, &node)?;
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            eprintln!("{node} of {} killed (PIDs {})", layout.name, pids.join(", "));
            Ok(())
        }
        Action::Start { cluster, node, timeout } => {
            let layout = existing(&cluster)?;
            rkube_cluster::nodes::start(&layout, &rkube_binary()?, &node, Duration::from_secs(timeout))?;
            eprintln!("{node} of {} started", layout.name);
            Ok(())
        }
        Action::Join { cluster, token, extra, timeout } => {
            let layout = existing(&cluster)?;
            let i = rkube_cluster::join::join(&layout, &rkube_binary()?, &token, &extra, Duration::from_secs(timeout))?;
            eprintln!("n{i} joined {} with the token", layout.name);
            Ok(())
        }
        Action::Forward { netns, to, port_file } => Ok(rkube_cluster::forward::run(&netns, &to, &port_file)?),
    }
}

/// With `--state-dir` outside the clusters' directory, a link `<clusters-dir>/<name>` to it, so that the other
/// subcommands find the cluster by name.
fn link_state_dir(parent: &std::path::Path, name: &str, state_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    rkube_cluster::layout::check_name(name)?;
    let Some(dir) = state_dir else { return Ok(()) };
    let link = parent.join(name);
    if link == dir {
        return Ok(());
    }
    if link.exists() || link.is_symlink() {
        anyhow::bail!(
            "cluster {name:?} exists already ({}); remove it with `rkube cluster down {name}` or choose another --name",
            link.display()
        );
    }
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let target = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    std::os::unix::fs::symlink(&target, &link).with_context(|| format!("linking {}", link.display()))
}

/// The layout with its state directory's link (see [`link_state_dir`]) followed.
fn resolved(layout: rkube_cluster::Layout) -> anyhow::Result<rkube_cluster::Layout> {
    match std::fs::read_link(&layout.dir) {
        Ok(target) => Ok(rkube_cluster::Layout::with_dir(&target, &layout.name)?),
        Err(_) => Ok(layout),
    }
}

/// The layout of a cluster that exists (its state directory is there).
fn existing(n: &NameArgs) -> anyhow::Result<rkube_cluster::Layout> {
    let layout = resolved(n.layout()?)?;
    if !layout.dir.exists() {
        anyhow::bail!(
            "no cluster {:?} (no {}); `rkube cluster list` shows the clusters",
            layout.name,
            layout.dir.display()
        );
    }
    Ok(layout)
}
