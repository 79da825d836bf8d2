//! `rkube cluster up`: network, etcd, server, agents, nodes Ready, shown step by step; a failing step stops
//! with its log tail and everything made so far is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layout::{self, Layout, MAX_ETCD_MEMBERS, MAX_NODES, MAX_SERVERS};
use crate::nodes::{NodeOptions, node_args, spawn_node, wait_node};
use crate::process::{self, step_error};
use crate::state::ClusterState;
use crate::{Error, Result};

/// The pod network backends a cluster may use.
pub const BACKENDS: [&str; 3] = ["vxlan", "host-gw", "none"];
/// The service proxy's modes.
pub const PROXY_MODES: [&str; 3] = ["iptables", "nftables", "ipvs"];

/// What `up` is asked for.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// The cluster's name.
    pub name: String,
    /// How many Kubernetes nodes. With one server, node n1 is that server (with its embedded agent) and the
    /// others agents; with several servers (`node.servers`), n1 to n<servers> are the control plane only and
    /// `nodes` agents follow them.
    pub nodes: u32,
    /// Its state directory (default `<parent>/<name>`).
    pub state_dir: Option<PathBuf>,
    /// Everything every node is started with.
    pub node: NodeOptions,
    /// The `rkube` binary the nodes run.
    pub rkube: PathBuf,
    /// How long each node may take to be ready.
    pub timeout: Duration,
}

impl UpOptions {
    /// Checks the options; the error names each bad value and its fix.
    pub fn check(&self) -> Result<()> {
        layout::check_name(&self.name)?;
        let mut problems = Vec::new();
        let servers = self.node.servers;
        if !(1..=MAX_SERVERS).contains(&servers) {
            problems.push(format!("--servers {servers} is out of range: give 1 to {MAX_SERVERS}"));
        } else if !(1..=MAX_NODES).contains(&self.total()) || (servers == 1 && self.nodes == 0) {
            problems.push(format!(
                "--nodes {} is out of range: give 1 to {MAX_NODES} nodes in all (servers included)",
                self.nodes
            ));
        }
        if self.node.etcd_members > MAX_ETCD_MEMBERS {
            problems.push(format!(
                "--etcd-members {} is out of range: give 1 to {MAX_ETCD_MEMBERS} (3 or 5 as a rule)",
                self.node.etcd_members
            ));
        }
        if servers > 1 && self.node.etcd_members == 0 {
            problems.push(format!(
                "--servers {servers} need a store they share: add --etcd-members 3 (or --etcd for one member)"
            ));
        }
        if !BACKENDS.contains(&self.node.backend.as_str()) {
            problems.push(format!("unknown backend {:?}: use vxlan, host-gw or none", self.node.backend));
        }
        if let Some(m) = &self.node.proxy_mode
            && !PROXY_MODES.contains(&m.as_str())
        {
            problems.push(format!("unknown proxy mode {m:?}: use iptables, nftables or ipvs"));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(Error::Invalid(problems.join("\n"))),
        }
    }

    /// How many node namespaces the cluster has (servers and agents).
    pub fn total(&self) -> u32 {
        if self.node.servers > 1 { self.node.servers + self.nodes } else { self.nodes }
    }

    /// The cluster's layout.
    pub fn layout(&self) -> Result<Layout> {
        match &self.state_dir {
            Some(d) => Layout::with_dir(d, &self.name),
            None => Layout::new(&layout::parent_dir(), &self.name),
        }
    }
}

/// Brings the cluster up; `progress` hears each step. On failure, what was made is removed.
pub fn up(o: &UpOptions, progress: &mut dyn FnMut(String)) -> Result<Layout> {
    o.check()?;
    let layout = o.layout()?;
    taken(&layout)?;
    std::fs::create_dir_all(&layout.dir).map_err(Error::io(format!("creating {}", layout.dir.display())))?;
    match build(&layout, o, progress) {
        Ok(()) => Ok(layout),
        Err(e) => {
            progress(format!("removing cluster {} after the failure", layout.name));
            if let Err(d) = crate::down::down(&layout, &o.rkube) {
                progress(format!("could not remove everything: {d}"));
            }
            Err(e)
        }
    }
}

/// Refuses a name whose state directory or namespace exists.
fn taken(layout: &Layout) -> Result<()> {
    let exists = std::fs::read_dir(&layout.dir).is_ok_and(|mut d| d.next().is_some());
    let ns = crate::net::namespaces()?;
    if exists || ns.contains(&layout.cluster_netns()) || ns.iter().any(|n| layout.is_node_netns(n)) {
        return Err(Error::Invalid(format!(
            "cluster {:?} exists already (state in {}); remove it with `rkube cluster down {}` or choose another --name",
            layout.name,
            layout.dir.display(),
            layout.name
        )));
    }
    Ok(())
}

fn build(layout: &Layout, o: &UpOptions, progress: &mut dyn FnMut(String)) -> Result<()> {
    let total = o.total();
    let servers = o.node.servers.max(1);
    let members = o.node.etcd_members;
    let node_args: BTreeMap<String, Vec<String>> =
        (1..=total).map(|i| (Layout::node_name(i), node_args(layout, i, &o.node))).collect();
    let mut state = ClusterState {
        name: layout.name.clone(),
        nodes: total,
        servers,
        etcd_members: members,
        backend: o.node.backend.clone(),
        etcd: members > 0,
        node_args,
        api_port: None,
    };
    state.save(layout)?;

    progress(format!("[1/5] network: namespace {} with bridge {}/24", layout.cluster_netns(), Layout::bridge_ip()));
    crate::net::create_cluster(layout, members)?;
    for i in 1..=total {
        crate::net::create_node(layout, i)?;
    }

    if members > 0 {
        progress(format!("[2/5] etcd: {}", Layout::etcd_urls(members).join(",")));
        crate::etcd::start(layout, members, "[2/5] etcd")?;
        if o.node.backend != "none" {
            crate::etcd::put_network_config(layout, members, "172.30.0.0/16", &o.node.backend)?;
        }
    } else {
        progress("[2/5] etcd: none (the store is SQLite on n1; leases from the nodes' podCIDR)".into());
    }

    let urls = Layout::server_urls(servers);
    progress(format!("[3/5] server{}: {}", if servers > 1 { "s" } else { "" }, urls.join(", ")));
    let step = "[3/5] server";
    let s = spawn_node(layout, &o.rkube, 1, &state.node_args["n1"])?;
    wait_node(layout, s, o.timeout, step)?;
    if servers > 1 {
        // Every server serves with certificates of one CA and signs service-account tokens with one key: the
        // others start from n1's (the PKI reuses what it finds and issues their own serving certificates).
        // One after another: servers bootstrapping at the same moment race on the `kubernetes` service's
        // ClusterIP (a create that finds the service releases its address; the other's claim then fails).
        for i in 2..=servers {
            crate::identity::copy_shared_pki(layout, i)?;
            let s = spawn_node(layout, &o.rkube, i, &state.node_args[&Layout::node_name(i)])?;
            wait_node(layout, s, o.timeout, &format!("[3/5] server {}", Layout::node_name(i)))?;
        }
    }
    let port = start_forwarder(layout, &o.rkube, servers, step)?;
    progress(format!("      API forwarded to the host's 127.0.0.1:{port}"));
    state.api_port = Some(port);
    state.save(layout)?;
    crate::identity::write_admin_kubeconfig(layout, port)?;

    if total > servers {
        let names: Vec<String> = (servers + 1..=total).map(Layout::node_name).collect();
        progress(format!("[4/5] agents: {} joining {}", names.join(", "), urls.join(",")));
        let mut starting = Vec::new();
        for i in servers + 1..=total {
            crate::identity::issue_node(layout, i)?;
            starting.push(spawn_node(layout, &o.rkube, i, &state.node_args[&Layout::node_name(i)])?);
        }
        for s in starting {
            let step = format!("[4/5] agent {}", Layout::node_name(s.index));
            wait_node(layout, s, o.timeout, &step)?;
        }
    } else {
        progress("[4/5] agents: none".into());
    }

    let nodes = state.agent_nodes();
    progress(format!("[5/5] nodes Ready: {}", nodes.len()));
    crate::nodes::wait_ready(layout, &nodes, o.timeout, &mut |line| progress(format!("      {line}")))
        .map_err(|e| step_error("[5/5] nodes Ready", e.to_string(), &layout.node_log(1)))
}

/// Starts the API forwarder (`rkube cluster forward`) to servers n1 to n<servers> (it fails over among them)
/// and returns its port on the host's 127.0.0.1.
fn start_forwarder(layout: &Layout, rkube: &Path, servers: u32, step: &str) -> Result<u16> {
    let (pid, log, port_file) = layout.forward_files();
    let _ = std::fs::remove_file(&port_file);
    let mut args: Vec<String> = vec!["cluster".into(), "forward".into(), "--netns".into(), layout.node_netns(1)];
    for i in 1..=servers {
        args.extend(["--to".into(), format!("{}:{}", Layout::node_ip(i), layout::API_PORT)]);
    }
    args.extend(["--port-file".into(), port_file.display().to_string()]);
    let mut child = process::spawn(None, rkube, &args, &log, &pid)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = crate::forward::read_port(&port_file) {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(step_error(step, format!("the API forwarder exited ({status})"), &log));
        }
        if std::time::Instant::now() >= deadline {
            return Err(step_error(step, "the API forwarder did not start within 10 s".into(), &log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
