//! The saved description of a cluster (`<state>/cluster.json`): how it was made and each node's command line,
//! so that `start` brings a node back exactly as `up` started it, and `list` can describe it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::{Error, Result};

/// A cluster as `up` made it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClusterState {
    /// The cluster's name.
    pub name: String,
    /// How many node namespaces (servers and agents: n1 to n<nodes>).
    pub nodes: u32,
    /// How many of them are API servers (n1 to n<servers>); with more than one, the servers run no agent.
    #[serde(default = "one")]
    pub servers: u32,
    /// etcd members (0 without etcd; a cluster saved before members existed had 1 when `etcd`).
    #[serde(default)]
    pub etcd_members: u32,
    /// The pod network backend (`vxlan`, `host-gw`, `none`).
    pub backend: String,
    /// Whether etcd runs in the cluster namespace (the server's store and flannel's leases).
    pub etcd: bool,
    /// Each node's `rkube` arguments (after the binary), by node name.
    pub node_args: BTreeMap<String, Vec<String>>,
    /// The forwarder's port on the host's 127.0.0.1, once it runs.
    pub api_port: Option<u16>,
}

fn one() -> u32 {
    1
}

impl ClusterState {
    /// Whether node `i` runs `rkube server`.
    pub fn is_server(&self, i: u32) -> bool {
        i <= self.servers.max(1)
    }

    /// The nodes running a node agent (the Kubernetes Nodes): every node with one server (n1's is embedded),
    /// only the agents with several (the servers are control plane only, as the guides' masters).
    pub fn agent_nodes(&self) -> Vec<u32> {
        let first = if self.servers > 1 { self.servers + 1 } else { 1 };
        (first..=self.nodes).collect()
    }

    /// How many etcd members run (an older state file says only `etcd`).
    pub fn members(&self) -> u32 {
        if self.etcd { self.etcd_members.max(1) } else { 0 }
    }

    /// Reads the cluster's state file.
    pub fn load(layout: &Layout) -> Result<ClusterState> {
        let path = layout.state_file();
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Invalid(format!(
                "no cluster {:?} (no {}); `rkube cluster list` shows the clusters",
                layout.name,
                path.display()
            )),
            _ => Error::Io { context: format!("reading {}", path.display()), source: e },
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{} is not a cluster description: {e}", path.display())))
    }

    /// Writes the cluster's state file (replacing it atomically).
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.state_file();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("encoding the cluster description: {e}")))?;
        std::fs::write(&tmp, text).map_err(Error::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(format!("writing {}", path.display())))
    }
}

/// One line of `rkube cluster list`.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The cluster's name.
    pub name: String,
    /// Its description, if readable.
    pub state: Option<ClusterState>,
    /// How many of its node processes run.
    pub running: u32,
    /// Its kubeconfig.
    pub kubeconfig: std::path::PathBuf,
}

/// The clusters under `parent` (directories with a `cluster.json`), by name.
pub fn list(parent: &Path) -> Result<Vec<Listed>> {
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { context: format!("reading {}", parent.display()), source: e }),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Ok(layout) = Layout::with_dir(&entry.path(), &name) else { continue };
        if !layout.state_file().exists() {
            continue;
        }
        let state = ClusterState::load(&layout).ok();
        let nodes = state.as_ref().map_or(0, |s| s.nodes);
        let running = (1..=nodes).filter(|i| crate::process::running(&layout.node_pid(*i)).is_some()).count() as u32;
        out.push(Listed { name, state, running, kubeconfig: layout.kubeconfig() });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), "dev").unwrap();
        std::fs::create_dir_all(&layout.dir).unwrap();
        let err = ClusterState::load(&layout).unwrap_err().to_string();
        assert!(err.contains("no cluster \"dev\""), "{err}");
        let state = ClusterState {
            name: "dev".into(),
            nodes: 2,
            servers: 1,
            etcd_members: 0,
            backend: "vxlan".into(),
            etcd: false,
            node_args: BTreeMap::from([("n1".into(), vec!["server".into()])]),
            api_port: Some(4000),
        };
        state.save(&layout).unwrap();
        assert_eq!(ClusterState::load(&layout).unwrap(), state);
        std::fs::create_dir_all(dir.path().join("not-a-cluster")).unwrap();
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "dev");
        assert_eq!(listed[0].running, 0);
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
        assert_eq!(state.agent_nodes(), [1, 2]);
        let ha = ClusterState { nodes: 5, servers: 3, etcd: true, etcd_members: 3, ..state.clone() };
        assert_eq!(ha.agent_nodes(), [4, 5]);
        assert!(ha.is_server(3) && !ha.is_server(4));
        // A state file from before HA reads as one server and, with etcd, one member.
        let old = r#"{"name":"x","nodes":1,"backend":"none","etcd":true,"node_args":{},"api_port":null}"#;
        let old: ClusterState = serde_json::from_str(old).unwrap();
        assert_eq!((old.servers, old.members()), (1, 1));
    }
}
