//! `--etcd` / `--etcd-members N`: Debian's etcd in the cluster namespace, member `m` at 192.168.77.(1+m)
//! (client port 2379, peer port 2380; the servers' store and flannel's subnet leases), its data under the state
//! directory; a member killed and started again rejoins from its data directory; and `etcdctl` run inside
//! that namespace.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::layout::{Layout, MAX_ETCD_MEMBERS};
use crate::process::{self, netns_path, run, spawn, step_error};
use crate::{Error, Result};

/// The prefix flannel's keys live under in a cluster (the guides' prefix).
pub const FLANNEL_PREFIX: &str = "/kube-centos/network";

/// Member `m`'s command line, the same at its first start and every later one (with a data directory that
/// holds the member already, etcd ignores the `--initial-*` flags).
fn member_args(layout: &Layout, members: u32, m: u32) -> Vec<String> {
    let (data, ..) = layout.etcd_member_files(m);
    let url = Layout::etcd_member_url(m);
    let peer = Layout::etcd_peer_url(m);
    let cluster: Vec<String> =
        (1..=members).map(|k| format!("{}={}", Layout::etcd_member_name(k), Layout::etcd_peer_url(k))).collect();
    vec![
        format!("--name={}", Layout::etcd_member_name(m)),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={}", cluster.join(",")),
        format!("--initial-cluster-token={}", layout.cluster_netns()),
        "--initial-cluster-state=new".to_owned(),
        "--logger=zap".to_owned(),
    ]
}

fn spawn_member(layout: &Layout, members: u32, m: u32) -> Result<Child> {
    let (_, pid, log) = layout.etcd_member_files(m);
    spawn(Some(&layout.cluster_netns()), Path::new("etcd"), &member_args(layout, members, m), &log, &pid)
}

/// Starts members 1 to `members` at once (they elect a leader among themselves) and waits until every one
/// answers healthy.
pub fn start(layout: &Layout, members: u32, step: &str) -> Result<Vec<Child>> {
    let mut children = (1..=members).map(|m| spawn_member(layout, members, m)).collect::<Result<Vec<_>>>()?;
    wait_healthy(layout, &Layout::etcd_urls(members), &mut children, Duration::from_secs(30), step)?;
    Ok(children)
}

/// Waits until every endpoint of `urls` answers `endpoint health`, failing when a child exits.
fn wait_healthy(layout: &Layout, urls: &[String], children: &mut [Child], timeout: Duration, step: &str) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let (_, _, log) = layout.etcd_member_files(1);
    loop {
        if etcdctl_at(layout, urls, &["endpoint", "health"]).is_ok() {
            return Ok(());
        }
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(step_error(step, format!("etcd exited ({status})"), &log));
            }
        }
        if Instant::now() >= deadline {
            let why = format!("etcd did not answer at {} within {} s", urls.join(","), timeout.as_secs());
            return Err(step_error(step, why, &log));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Parses `etcd<m>` (a member, as `rkube cluster stop|start` take it); `None` for anything else (a node).
pub fn parse_member(name: &str, members: u32) -> Result<Option<u32>> {
    let Some(m) = name.strip_prefix("etcd") else { return Ok(None) };
    match m.parse::<u32>().ok().filter(|m| (1..=members).contains(m)) {
        Some(m) => Ok(Some(m)),
        None if members == 0 => Err(Error::Invalid(format!("no {name}: this cluster runs no etcd"))),
        None => {
            Err(Error::Invalid(format!("no member {name:?}: this cluster's etcd members are etcd1 to etcd{members}")))
        }
    }
}

/// Kills member `m` with SIGKILL, as a crash would; returns its PID.
pub fn kill_member(layout: &Layout, m: u32) -> Result<u32> {
    let (_, pid, _) = layout.etcd_member_files(m);
    process::kill(&pid).ok_or_else(|| Error::Invalid(format!("{} is not running", Layout::etcd_member_name(m))))
}

/// Starts member `m` again from its data directory and waits until it answers healthy.
pub fn start_member(layout: &Layout, members: u32, m: u32, timeout: Duration) -> Result<()> {
    let name = Layout::etcd_member_name(m);
    let (_, pid, _) = layout.etcd_member_files(m);
    if let Some(pid) = process::running(&pid) {
        return Err(Error::Invalid(format!("{name} runs already (PID {pid}); `rkube cluster stop` it first")));
    }
    let mut child = spawn_member(layout, members, m)?;
    let url = [Layout::etcd_member_url(m)];
    wait_healthy(layout, &url, std::slice::from_mut(&mut child), timeout, &format!("starting {name}"))
}

/// Stops every member that runs (SIGTERM, then SIGKILL after `grace`); returns their PIDs.
pub fn stop_all(layout: &Layout, grace: Duration) -> Vec<u32> {
    (1..=MAX_ETCD_MEMBERS).filter_map(|m| process::stop(&layout.etcd_member_files(m).1, grace)).collect()
}

/// Runs `etcdctl --endpoints <every member> <args>` (API v3) inside the cluster namespace.
pub fn etcdctl(layout: &Layout, members: u32, args: &[&str]) -> Result<String> {
    etcdctl_at(layout, &Layout::etcd_urls(members.max(1)), args)
}

fn etcdctl_at(layout: &Layout, urls: &[String], args: &[&str]) -> Result<String> {
    let net = format!("--net={}", netns_path(&layout.cluster_netns()).display());
    let endpoints = format!("--endpoints={}", urls.join(","));
    let mut all = vec![net.as_str(), "--", "env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=2s", &endpoints];
    all.extend_from_slice(args);
    run("nsenter", &all)
}

/// Stores flannel's network config for the cluster (as the guides' `etcdctl mk <prefix>/config`), unless one
/// is there already.
pub fn put_network_config(layout: &Layout, members: u32, cluster_cidr: &str, backend: &str) -> Result<()> {
    let key = format!("{FLANNEL_PREFIX}/config");
    if !etcdctl(layout, members, &["get", &key, "--print-value-only"])?.trim().is_empty() {
        return Ok(());
    }
    let config = serde_json::json!({"Network": cluster_cidr, "SubnetLen": 24, "Backend": {"Type": backend}});
    etcdctl(layout, members, &["put", &key, &config.to_string()])
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("storing flannel's network config at {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members() {
        assert_eq!(parse_member("n1", 3).unwrap(), None);
        assert_eq!(parse_member("etcd2", 3).unwrap(), Some(2));
        assert!(parse_member("etcd4", 3).unwrap_err().to_string().contains("etcd1 to etcd3"));
        assert!(parse_member("etcd1", 0).unwrap_err().to_string().contains("no etcd"));
        let l = Layout::new(Path::new("/s"), "dev").unwrap();
        let a = member_args(&l, 3, 2);
        assert!(a.contains(&"--name=etcd2".to_owned()));
        assert!(a.contains(&"--data-dir=/s/dev/etcd2".to_owned()));
        let cluster = "--initial-cluster=etcd1=http://192.168.77.2:2380,etcd2=http://192.168.77.3:2380,\
                       etcd3=http://192.168.77.4:2380";
        assert!(a.contains(&cluster.to_owned()), "{a:?}");
    }
}
