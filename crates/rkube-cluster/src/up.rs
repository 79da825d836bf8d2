//! `rkube cluster up`: network, etcd, server, agents, nodes Ready, shown step by step; a failing step stops
//! with its log tail and everything made so far is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layout::{self, Layout, MAX_NODES};
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
    /// How many nodes (node 1 is the server).
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
        if !(1..=MAX_NODES).contains(&self.nodes) {
            problems.push(format!("--nodes {} is out of range: give 1 to {MAX_NODES}", self.nodes));
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
    let node_args: BTreeMap<String, Vec<String>> =
        (1..=o.nodes).map(|i| (Layout::node_name(i), node_args(layout, i, &o.node))).collect();
    let mut state = ClusterState {
        name: layout.name.clone(),
        nodes: o.nodes,
        backend: o.node.backend.clone(),
        etcd: o.node.etcd,
        node_args,
        api_port: None,
    };
    state.save(layout)?;

    progress(format!("[1/5] network: namespace {} with bridge {}/24", layout.cluster_netns(), Layout::bridge_ip()));
    crate::net::create_cluster(layout)?;
    for i in 1..=o.nodes {
        crate::net::create_node(layout, i)?;
    }

    if o.node.etcd {
        progress(format!("[2/5] etcd: {}", Layout::etcd_url()));
        crate::etcd::start(layout, "[2/5] etcd")?;
        if o.node.backend != "none" {
            crate::etcd::put_network_config(layout, "172.30.0.0/16", &o.node.backend)?;
        }
    } else {
        progress("[2/5] etcd: none (the store is SQLite on n1; leases from the nodes' podCIDR)".into());
    }

    progress(format!("[3/5] server: n1 at {}", Layout::server_url()));
    let step = "[3/5] server";
    let s = spawn_node(layout, &o.rkube, 1, &state.node_args["n1"])?;
    wait_node(layout, s, o.timeout, step)?;
    let port = start_forwarder(layout, &o.rkube, step)?;
    progress(format!("      API forwarded to the host's 127.0.0.1:{port}"));
    state.api_port = Some(port);
    state.save(layout)?;
    crate::identity::write_admin_kubeconfig(layout, port)?;

    if o.nodes > 1 {
        let names: Vec<String> = (2..=o.nodes).map(Layout::node_name).collect();
        progress(format!("[4/5] agents: {} joining {}", names.join(", "), Layout::server_url()));
        let mut starting = Vec::new();
        for i in 2..=o.nodes {
            crate::identity::issue_node(layout, i)?;
            starting.push(spawn_node(layout, &o.rkube, i, &state.node_args[&Layout::node_name(i)])?);
        }
        for s in starting {
            let step = format!("[4/5] agent {}", Layout::node_name(s.index));
            wait_node(layout, s, o.timeout, &step)?;
        }
    } else {
        progress("[4/5] agents: none (one node)".into());
    }

    progress(format!("[5/5] nodes Ready: {}", o.nodes));
    crate::nodes::wait_ready(layout, o.nodes, o.timeout, &mut |line| progress(format!("      {line}")))
        .map_err(|e| step_error("[5/5] nodes Ready", e.to_string(), &layout.node_log(1)))
}

/// Starts the API forwarder (`rkube cluster forward`) and returns its port on the host's 127.0.0.1.
fn start_forwarder(layout: &Layout, rkube: &Path, step: &str) -> Result<u16> {
    let (pid, log, port_file) = layout.forward_files();
    let _ = std::fs::remove_file(&port_file);
    let args: Vec<String> = vec![
        "cluster".into(),
        "forward".into(),
        "--netns".into(),
        layout.node_netns(1),
        "--to".into(),
        format!("{}:{}", Layout::node_ip(1), layout::API_PORT),
        "--port-file".into(),
        port_file.display().to_string(),
    ];
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
