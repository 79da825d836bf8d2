//! `rkube cluster down`: stops every process of the cluster by its PID file (only those), cleans each node
//! (`rkube agent clean` inside the node's namespace: pod sandboxes, shims, containerd, mounts), deletes the
//! namespaces (links and in-namespace iptables rules go with them) and the state directory. Works from what
//! exists, so a half-built cluster goes too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::layout::Layout;
use crate::process::{self, netns_path};
use crate::{Error, Result};

/// How long a node has to stop after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(20);

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// PIDs stopped.
    pub processes: Vec<u32>,
    /// Nodes cleaned.
    pub nodes: Vec<String>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
}

/// The node directories (`n<digits>`) in the state directory, by index.
fn node_indexes(layout: &Layout) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(&layout.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix('n')?.parse().ok())
        .collect();
    out.sort();
    out
}

/// Removes the cluster; every step is tried even when one fails, and the failures are reported together.
pub fn down(layout: &Layout, rkube: &Path) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut failures = Vec::new();
    let (forward_pid, ..) = layout.forward_files();
    removed.processes.extend(process::stop(&forward_pid, Duration::from_secs(2)));

    // Every node at once: SIGTERM, then each gets the grace period.
    let nodes = node_indexes(layout);
    let pids: Vec<(u32, u32)> =
        nodes.iter().filter_map(|i| process::running(&layout.node_pid(*i)).map(|p| (*i, p))).collect();
    for (_, pid) in &pids {
        process::signal(*pid, rustix::process::Signal::TERM);
    }
    for (i, pid) in &pids {
        process::stop(&layout.node_pid(*i), GRACE);
        removed.processes.push(*pid);
    }

    // Cleaning starts a containerd per node to remove its pods: in parallel.
    let cleans: Vec<_> = nodes
        .iter()
        .filter(|i| layout.node_dir(**i).join("agent").exists())
        .map(|i| (*i, clean_node(layout, rkube, *i)))
        .collect();
    for (i, clean) in cleans {
        let outcome = clean.and_then(|c| {
            let out = c.wait_with_output().map_err(Error::io("waiting for rkube agent clean"))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(Error::Command {
                    command: format!("rkube agent clean --data-dir {}", layout.node_dir(i).display()),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                }),
            }
        });
        match outcome {
            Ok(()) => removed.nodes.push(Layout::node_name(i)),
            Err(e) => failures.push(e.to_string()),
        }
    }

    removed.processes.extend(crate::etcd::stop_all(layout, Duration::from_secs(10)));

    match crate::net::delete_all(layout) {
        Ok(ns) => removed.namespaces = ns,
        Err(e) => failures.push(e.to_string()),
    }
    if let Err(e) = remove_state(&layout.dir) {
        failures.push(e.to_string());
    }
    match failures.is_empty() {
        true => Ok(removed),
        false => {
            Err(Error::Invalid(format!("cluster {} not removed completely:\n{}", layout.name, failures.join("\n"))))
        }
    }
}

/// Starts `rkube agent clean` for node `i` inside its namespace (made afresh if it is gone, so that the
/// clean never acts on the host's network: it deletes the CNI bridge named in the node's conflist).
fn clean_node(layout: &Layout, rkube: &Path, i: u32) -> Result<std::process::Child> {
    let ns = layout.node_netns(i);
    if !netns_path(&ns).exists() {
        process::run("ip", &["netns", "add", &ns])?;
    }
    Command::new("nsenter")
        .arg(format!("--net={}", netns_path(&ns).display()))
        .arg("--")
        .arg(rkube)
        .args(["agent", "clean", "--data-dir"])
        .arg(layout.node_dir(i))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command { command: format!("nsenter {ns} rkube agent clean"), detail: e.to_string() })
}

/// Deletes the state directory, unless something is still mounted under it (a recursive delete would go
/// into the mount: a hostPath volume is the host's own directory).
fn remove_state(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let canonical = dir.canonicalize().map_err(Error::io(format!("resolving {}", dir.display())))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("reading mountinfo"))?;
    let mounted: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&canonical))
        .collect();
    if !mounted.is_empty() {
        return Err(Error::Invalid(format!(
            "{} still has mounts under it ({}); unmount them and delete it by hand",
            dir.display(),
            mounted.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    std::fs::remove_dir_all(dir).map_err(Error::io(format!("deleting {}", dir.display())))
}
