//! Adding a node to a running cluster that joins with a token (`rkube agent --token`), as a new machine would:
//! node n<next> gets its namespace on the cluster bridge and an agent with the cluster's agent flags, the
//! servers' URLs and the token, and no identity of its own: it gets its certificates by CSR.

use std::path::Path;
use std::time::Duration;

use crate::layout::{Layout, MAX_NODES};
use crate::nodes::{NodeOptions, node_args, spawn_node, wait_node};
use crate::state::ClusterState;
use crate::{Error, Result};

/// The identity flags `up` gives its agents (each followed by a value), which a token-joined agent replaces.
const IDENTITY_FLAGS: [&str; 4] = ["--kubeconfig", "--tls-cert-file", "--tls-private-key-file", "--client-ca-file"];

/// Node `i`'s arguments made from `template` (an agent node `from`'s): its paths, name and address become node
/// `i`'s, the identity flags go and `--token` comes instead. Flags given to every node stay.
fn joined_args(layout: &Layout, template: &[String], from: u32, i: u32, token: &str) -> Vec<String> {
    let (old_dir, new_dir) = (layout.node_dir(from).display().to_string(), layout.node_dir(i).display().to_string());
    let mut out = Vec::new();
    let mut args = template.iter();
    while let Some(a) = args.next() {
        if IDENTITY_FLAGS.contains(&a.as_str()) {
            args.next();
            continue;
        }
        out.push(a.clone());
        let value = match a.as_str() {
            "--node-name" => args.next().map(|_| Layout::node_name(i)),
            "--node-ip" => args.next().map(|_| Layout::node_ip(i).to_string()),
            _ => None,
        };
        out.extend(value);
    }
    for a in &mut out {
        if let Some(rest) = a.strip_prefix(&old_dir) {
            *a = format!("{new_dir}{rest}");
        }
    }
    out.extend(["--token".to_owned(), token.to_owned()]);
    out
}

/// Adds node n<next> joining with `token` (its agent also given `extra` flags) and waits until the agent says
/// it is ready; returns its index. The cluster's state then lists it, so `stop`, `start`, `load` and `down`
/// treat it like the others.
pub fn join(layout: &Layout, rkube: &Path, token: &str, extra: &[String], timeout: Duration) -> Result<u32> {
    let mut state = ClusterState::load(layout)?;
    let i = state.nodes + 1;
    if i > MAX_NODES {
        return Err(Error::Invalid(format!("the cluster has {} nodes, the most there may be", state.nodes)));
    }
    let template = state.agent_nodes().into_iter().find(|n| !state.is_server(*n));
    let args = match template {
        Some(from) => {
            let args = state.node_args.get(&Layout::node_name(from)).ok_or_else(|| {
                Error::Invalid(format!("{} has no command line for node n{from}", layout.state_file().display()))
            })?;
            joined_args(layout, args, from, i, token)
        }
        // No agent to copy: the flags `up` gives agents by default.
        None => {
            let o = NodeOptions {
                backend: state.backend.clone(),
                etcd_members: state.members(),
                servers: state.servers,
                services: true,
                proxy_mode: None,
                extra: Vec::new(),
            };
            joined_args(layout, &node_args(layout, i, &o), i, i, token)
        }
    };
    let mut args = args;
    let at = args.len() - 2;
    args.splice(at..at, extra.iter().cloned());
    // Saved first: `down` then finds the node even if what follows fails half-way.
    state.nodes = i;
    state.node_args.insert(Layout::node_name(i), args.clone());
    state.save(layout)?;
    crate::net::create_node(layout, i)?;
    let s = spawn_node(layout, rkube, i, &args)?;
    wait_node(layout, s, timeout, &format!("agent {} joining with the token", Layout::node_name(i)))?;
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_node_has_its_own_paths_and_the_token_instead_of_an_identity() {
        let layout = Layout::new(Path::new("/s"), "dev").unwrap();
        let o = NodeOptions {
            backend: "vxlan".into(),
            etcd_members: 3,
            servers: 3,
            services: false,
            proxy_mode: None,
            extra: vec!["--v=2".into()],
        };
        let template = node_args(&layout, 4, &o);
        let args = joined_args(&layout, &template, 4, 6, "K10abc::id.secret");
        let text = args.join(" ");
        assert!(text.starts_with("agent --data-dir /s/dev/n6 --node-name n6 --node-ip 192.168.77.16"), "{text}");
        assert!(text.contains("--flannel-subnet-env /s/dev/n6/flannel/subnet.env"), "{text}");
        assert!(text.contains("--server https://192.168.77.11:6443,https://192.168.77.12:6443"), "{text}");
        assert!(text.contains("--disable-proxy") && text.contains("--v=2"), "{text}");
        assert!(text.ends_with("--token K10abc::id.secret"), "{text}");
        for flag in IDENTITY_FLAGS {
            assert!(!text.contains(flag), "{text}");
        }
        assert!(!text.contains("/n4"), "{text}");
    }
}
