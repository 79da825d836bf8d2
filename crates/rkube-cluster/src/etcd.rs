//! `--etcd`: Debian's etcd in the cluster namespace at 192.168.77.2:2379 (the server's store and flannel's
//! subnet leases), its data under the state directory; and `etcdctl` run inside that namespace.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::process::{netns_path, run, spawn, step_error};
use crate::{Error, Result};

/// The prefix flannel's keys live under in a cluster (the guides' prefix).
pub const FLANNEL_PREFIX: &str = "/kube-centos/network";

/// Starts etcd and waits until it answers.
pub fn start(layout: &Layout, step: &str) -> Result<Child> {
    let (data, pid, log) = layout.etcd_files();
    let url = Layout::etcd_url();
    // The peer URL stays on the cluster namespace's loopback: one member, nobody to talk to.
    let peer = "http://127.0.0.1:2380";
    let member = layout.cluster_netns();
    let args = vec![
        format!("--name={member}"),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={member}={peer}"),
        "--initial-cluster-state=new".to_owned(),
        "--logger=zap".to_owned(),
    ];
    let mut child = spawn(Some(&member), Path::new("etcd"), &args, &log, &pid)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if etcdctl(layout, &["endpoint", "health"]).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(step_error(step, format!("etcd exited ({status})"), &log));
        }
        if Instant::now() >= deadline {
            return Err(step_error(step, format!("etcd did not answer at {url} within 30 s"), &log));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `etcdctl --endpoints http://192.168.77.2:2379 <args>` (API v3) inside the cluster namespace.
pub fn etcdctl(layout: &Layout, args: &[&str]) -> Result<String> {
    let net = format!("--net={}", netns_path(&layout.cluster_netns()).display());
    let endpoints = format!("--endpoints={}", Layout::etcd_url());
    let mut all = vec![net.as_str(), "--", "env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=2s", &endpoints];
    all.extend_from_slice(args);
    run("nsenter", &all)
}

/// Stores flannel's network config for the cluster (as the guides' `etcdctl mk <prefix>/config`), unless one
/// is there already.
pub fn put_network_config(layout: &Layout, cluster_cidr: &str, backend: &str) -> Result<()> {
    let key = format!("{FLANNEL_PREFIX}/config");
    if !etcdctl(layout, &["get", &key, "--print-value-only"])?.trim().is_empty() {
        return Ok(());
    }
    let config = serde_json::json!({"Network": cluster_cidr, "SubnetLen": 24, "Backend": {"Type": backend}});
    etcdctl(layout, &["put", &key, &config.to_string()])
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("storing flannel's network config at {key}: {e}")))
}
