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
    /// How many nodes.
    pub nodes: u32,
    /// The pod network backend (`vxlan`, `host-gw`, `none`).
    pub backend: String,
    /// Whether etcd runs in the cluster namespace (the server's store and flannel's leases).
    pub etcd: bool,
    /// Each node's `rkube` arguments (after the binary), by node name.
    pub node_args: BTreeMap<String, Vec<String>>,
    /// The forwarder's port on the host's 127.0.0.1, once it runs.
    pub api_port: Option<u16>,
}

impl ClusterState {
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
    }
}
