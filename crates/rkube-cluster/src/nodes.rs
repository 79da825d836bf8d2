//! The nodes: their command lines, starting one (and waiting for its ready line), stopping one as a crash
//! would, running a command in a node's namespace, importing images, and waiting for nodes to be Ready.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::process::{self, log_len, wait_for_line};
use crate::state::ClusterState;
use crate::{Error, Result};

/// What every node of a cluster is started with, apart from its identity.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// `--flannel-backend`.
    pub backend: String,
    /// etcd members (0: none, the store is SQLite on n1): the servers' store and flannel's leases.
    pub etcd_members: u32,
    /// API servers (n1 to n<servers>); with several, they share etcd and run no agent, and the agents fail over
    /// among them.
    pub servers: u32,
    /// Whether the service proxy and DNS run (else `--disable-proxy --disable-dns`).
    pub services: bool,
    /// `--proxy-mode`, if given.
    pub proxy_mode: Option<String>,
    /// More flags for every node.
    pub extra: Vec<String>,
}

impl NodeOptions {
    /// `servers` servers on `etcd_members` etcd members (0: SQLite), the given backend, the default proxy mode and
    /// no extra flags: what the benchmarks bring up.
    pub fn plain(backend: &str, servers: u32, etcd_members: u32, services: bool) -> NodeOptions {
        NodeOptions { backend: backend.into(), etcd_members, servers, services, proxy_mode: None, extra: vec![] }
    }
}

/// Node `i`'s `rkube` arguments.
pub fn node_args(layout: &Layout, i: u32, o: &NodeOptions) -> Vec<String> {
    let dir = layout.node_dir(i);
    let path = |p: PathBuf| p.display().to_string();
    let server = i <= o.servers.max(1);
    // With several servers they are the control plane only, as the guides' masters.
    let agent = !server || o.servers <= 1;
    let etcd = Layout::etcd_urls(o.etcd_members).join(",");
    let mut args: Vec<String> = vec![if server { "server" } else { "agent" }.into()];
    let mut push = |a: &[&str]| args.extend(a.iter().map(|s| (*s).to_owned()));
    push(&["--data-dir", &path(dir.clone()), "--node-name", &Layout::node_name(i)]);
    push(&["--node-ip", &Layout::node_ip(i).to_string()]);
    if agent {
        push(&["--flannel-iface", "eth0", "--flannel-backend", &o.backend]);
        // flannel's files default to /run/flannel, which every node of the machine would share.
        push(&["--flannel-subnet-env", &path(dir.join("flannel").join("subnet.env"))]);
        push(&["--flannel-docker-opts", &path(dir.join("flannel").join("docker"))]);
        if o.etcd_members > 0 && o.backend != "none" {
            push(&["--flannel-etcd-endpoints", &etcd, "--flannel-etcd-prefix", crate::etcd::FLANNEL_PREFIX]);
        }
        if !o.services {
            push(&["--disable-proxy", "--disable-dns"]);
        }
        if let Some(mode) = &o.proxy_mode {
            push(&["--proxy-mode", mode]);
        }
    } else {
        push(&["--disable-agent"]);
    }
    if server {
        if o.etcd_members > 0 {
            push(&["--etcd-endpoints", &etcd]);
            if o.backend != "none" {
                // flannel leases the nodes' subnets from etcd; each agent sets its node's podCIDR to its lease.
                push(&["--allocate-node-cidrs=false"]);
            }
        }
    } else {
        let id = crate::identity::node_identity_paths(layout, i);
        let servers = Layout::server_urls(o.servers.max(1)).join(",");
        push(&["--server", &servers, "--kubeconfig", &path(id.kubeconfig)]);
        push(&["--tls-cert-file", &path(id.cert), "--tls-private-key-file", &path(id.key)]);
        push(&["--client-ca-file", &path(id.ca)]);
    }
    args.extend(o.extra.iter().cloned());
    args
}

/// The line a node prints when it is ready.
fn ready_line(server: bool) -> &'static str {
    if server { "rkube server is ready" } else { "rkube agent is ready" }
}

/// A node process just started, not yet ready.
pub struct Starting {
    /// Which node.
    pub index: u32,
    server: bool,
    child: Child,
    from: usize,
}

impl Starting {
    /// The process's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Starts node `i` detached in its namespace with `args` (the `rkube` binary is `rkube`).
pub fn spawn_node(layout: &Layout, rkube: &Path, i: u32, args: &[String]) -> Result<Starting> {
    let dir = layout.node_dir(i);
    std::fs::create_dir_all(dir.join("flannel")).map_err(Error::io(format!("creating {}", dir.display())))?;
    let log = layout.node_log(i);
    let from = log_len(&log);
    let child = process::spawn(Some(&layout.node_netns(i)), rkube, args, &log, &layout.node_pid(i))?;
    let server = args.first().is_some_and(|a| a == "server");
    Ok(Starting { index: i, server, child, from })
}

/// Waits until a started node prints its ready line.
pub fn wait_node(layout: &Layout, mut s: Starting, timeout: Duration, step: &str) -> Result<()> {
    let log = layout.node_log(s.index);
    wait_for_line(&mut s.child, &log, s.from, ready_line(s.server), timeout, step)
}

/// `rkube cluster start`: brings a stopped node back with the flags and data directory it had.
pub fn start(layout: &Layout, rkube: &Path, node: &str, timeout: Duration) -> Result<()> {
    let state = ClusterState::load(layout)?;
    if let Some(m) = crate::etcd::parse_member(node, state.members())? {
        return crate::etcd::start_member(layout, state.members(), m, timeout);
    }
    let i = crate::layout::parse_node(node, state.nodes)?;
    let name = Layout::node_name(i);
    if let Some(pid) = process::running(&layout.node_pid(i)) {
        return Err(Error::Invalid(format!("node {name} runs already (PID {pid}); `rkube cluster stop` it first")));
    }
    let args = state.node_args.get(&name).ok_or_else(|| {
        Error::Invalid(format!("{} has no command line for node {name}", layout.state_file().display()))
    })?;
    let s = spawn_node(layout, rkube, i, args)?;
    wait_node(layout, s, timeout, &format!("starting node {name}"))
}

/// `rkube cluster stop`: kills the node's rkube process and its containerd with SIGKILL, as a crash would
/// (pods' shims keep running). Returns the PIDs killed.
pub fn stop(layout: &Layout, node: &str) -> Result<Vec<u32>> {
    let state = ClusterState::load(layout)?;
    if let Some(m) = crate::etcd::parse_member(node, state.members())? {
        return crate::etcd::kill_member(layout, m).map(|pid| vec![pid]);
    }
    let i = crate::layout::parse_node(node, state.nodes)?;
    let mut killed: Vec<u32> = process::kill(&layout.node_pid(i)).into_iter().collect();
    let config = layout.node_dir(i).join("agent").join("containerd").join("config.toml");
    if let Some(pid) = rkube_agent::clean::containerd_pid(&config) {
        process::signal(pid, rustix::process::Signal::KILL);
        process::wait_gone(pid, Duration::from_secs(10));
        killed.push(pid);
    }
    if killed.is_empty() {
        return Err(Error::Invalid(format!("node {} is not running", Layout::node_name(i))));
    }
    Ok(killed)
}

/// `rkube cluster exec`: runs `cmd` in node's network namespace (`ip netns exec`), with this process's
/// standard streams; returns its exit status.
pub fn exec(layout: &Layout, node: &str, cmd: &[String]) -> Result<std::process::ExitStatus> {
    let state = ClusterState::load(layout)?;
    let i = crate::layout::parse_node(node, state.nodes)?;
    if cmd.is_empty() {
        return Err(Error::Invalid("no command given: rkube cluster exec <cluster> <node> -- <command>...".into()));
    }
    std::process::Command::new("ip")
        .args(["netns", "exec", &layout.node_netns(i)])
        .args(cmd)
        .status()
        .map_err(|e| Error::Command { command: format!("ip netns exec {}", cmd.join(" ")), detail: e.to_string() })
}

/// `rkube cluster load`: imports image archives into every node's containerd (`rkube images import`, which
/// works while the agents run). Stops at the first node that fails.
pub fn load(layout: &Layout, rkube: &Path, files: &[PathBuf]) -> Result<Vec<String>> {
    let state = ClusterState::load(layout)?;
    let mut lines = Vec::new();
    for i in state.agent_nodes() {
        let dir = layout.node_dir(i).display().to_string();
        let mut args: Vec<String> = vec!["images".into(), "import".into(), "--data-dir".into(), dir];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let rkube = rkube.to_string_lossy();
        let out = process::run(&rkube, &refs)
            .map_err(|e| Error::Invalid(format!("importing into node {}: {e}", Layout::node_name(i))))?;
        lines.extend(out.lines().map(|l| format!("{}: {l}", Layout::node_name(i))));
    }
    Ok(lines)
}

/// Waits until the API (through the admin kubeconfig) shows every node of `nodes` (indexes) Ready; `progress`
/// hears how many are.
pub fn wait_ready(layout: &Layout, nodes: &[u32], timeout: Duration, progress: &mut dyn FnMut(String)) -> Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io("starting a runtime"))?;
    runtime.block_on(async {
        let config = rkube_client::config::from_file(&layout.kubeconfig())
            .await
            .map_err(|e| Error::Api(format!("kubeconfig {}: {e}", layout.kubeconfig().display())))?;
        let client = kube::Client::try_from(config).map_err(|e| Error::Api(format!("API client: {e}")))?;
        let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
        let deadline = Instant::now() + timeout;
        let mut last = (usize::MAX, String::new());
        loop {
            let (ready, why) = match api.list(&Default::default()).await {
                Ok(list) => {
                    let ready: Vec<String> =
                        list.items.iter().filter(|n| is_ready(n)).filter_map(|n| n.metadata.name.clone()).collect();
                    let count = nodes.iter().filter(|i| ready.contains(&Layout::node_name(**i))).count();
                    (count, format!("{count}/{} nodes Ready", nodes.len()))
                }
                Err(e) => (0, format!("listing nodes: {e}")),
            };
            if ready == nodes.len() {
                return Ok(());
            }
            if (ready, why.clone()) != last {
                progress(why.clone());
                last = (ready, why.clone());
            }
            if Instant::now() >= deadline {
                return Err(Error::Api(format!("not every node Ready within {} s: {why}", timeout.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

fn is_ready(node: &k8s_openapi::api::core::v1::Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
