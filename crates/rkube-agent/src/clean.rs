//! `rkube agent clean`: removes what a stopped agent left on the host: every pod sandbox (through CRI, so the
//! containers, shims, network namespaces and IP allocations go too), the containerd it ran, mounts under the
//! data directory, and the CNI bridge it made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rkube_cri::{Runtime, Supervisor};

use crate::config::{AgentConfig, Flags, RuntimeSource};
use crate::{Error, Result, cni, lock};

/// What `clean` removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// Pod sandboxes removed.
    pub sandboxes: usize,
    /// Mount points unmounted.
    pub unmounted: Vec<PathBuf>,
    /// The bridge deleted, if there was one.
    pub bridge: Option<String>,
}

/// Cleans the node whose agent used `data_dir` (it must not be running). A containerd left running by an
/// agent that was killed is used and then stopped; otherwise one is started for the purpose.
pub async fn clean(data_dir: &Path) -> Result<Cleaned> {
    let agent_dir = data_dir.join("agent");
    let mut cleaned = Cleaned::default();
    if !agent_dir.exists() {
        return Ok(cleaned);
    }
    let _lock = lock::take(&agent_dir, "rkube agent clean")?;
    let flags = Flags {
        data_dir: data_dir.to_path_buf(),
        node_name: "clean".into(),
        node_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        cluster_dns: vec![std::net::IpAddr::from([127, 0, 0, 1])],
        cluster_domain: "cluster.local".into(),
        container_runtime_endpoint: None,
        kube_reserved: String::new(),
        system_reserved: String::new(),
        cni_bridge: "cni0".into(),
        cni_conf_dir: None,
        kubelet_port: 1,
        node_labels: Vec::new(),
        max_pods: 1,
        resolv_conf: "/etc/resolv.conf".into(),
        network: crate::network::NetworkFlags::default(),
        services: crate::services::ServicesFlags::default(),
    };
    let config = AgentConfig::from_flags(&flags)?;
    let socket = config.runtime_socket();
    let config_file = config.containerd_dir().join("config.toml");
    let mut pods = Ok(0);
    if config_file.exists() {
        // A containerd of a killed agent may still run (it has its own process group); use it, then stop it.
        let left = Runtime::connect(&socket).await.ok();
        let left = match left {
            Some(rt) if rt.wait_ready(Duration::from_secs(5)).await.is_ok() => Some(rt),
            _ => None,
        };
        if let Some(rt) = left {
            let removed = rkube_cri::remove_all_pods(&rt).await;
            drop(rt);
            stop_containerd(&config_file).await;
            pods = removed.map_err(Error::runtime("removing pods"));
        } else {
            let c = crate::runtime::containerd_config(&config)?;
            let supervisor = Supervisor::start(c).await.map_err(Error::runtime("starting containerd to clean up"))?;
            let rt =
                Runtime::connect(&supervisor.endpoint()).await.map_err(Error::runtime("connecting to containerd"))?;
            let removed = rkube_cri::remove_all_pods(&rt).await;
            supervisor.stop().await;
            pods = removed.map_err(Error::runtime("removing pods"));
        }
    }
    debug_assert_eq!(config.runtime, RuntimeSource::Supervised);
    // Mounts and the bridge go even when a pod could not be removed, so a failed clean leaves as little as
    // it can; the pod error is reported after.
    // The cgroups of the pods this node knew (one directory per pod UID under the pods dir).
    if let Ok(pods) = std::fs::read_dir(config.pods_dir()) {
        for uid in pods.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)) {
            rkube_cri::podcgroups::remove(&uid);
        }
    }
    cleaned.unmounted = unmount_under(data_dir)?;
    cleaned.bridge = delete_bridge(&config.cni_conf_dir().join(cni::CONFLIST)).await;
    cleaned.sandboxes = pods?;
    Ok(cleaned)
}

/// Stops the containerd running with `config_file` (found in /proc by its command line), by PID.
async fn stop_containerd(config_file: &Path) {
    let Some(pid) = containerd_pid(config_file) else { return };
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else { return };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// The PID of the containerd started with `--config <config_file>`, if one runs.
pub fn containerd_pid(config_file: &Path) -> Option<u32> {
    let wanted = config_file.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_containerd = args.first().is_some_and(|a| a.ends_with(b"containerd"));
        (is_containerd && args.windows(2).any(|w| w[0] == b"--config" && w[1] == wanted)).then_some(pid)
    })
}

/// Unmounts every mount point under `dir`, deepest first (lazily: nothing may still use them).
fn unmount_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = dir.canonicalize().map_err(Error::io(format!("resolving {}", dir.display())))?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("reading /proc/self/mountinfo"))?;
    let mut points = mounts_under(&mountinfo, &dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    let mut done = Vec::new();
    for p in points {
        match rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => done.push(p),
            Err(e) => tracing::warn!(path = %p.display(), "unmounting: {e}"),
        }
    }
    Ok(done)
}

/// Mount points (field 5 of mountinfo, with `\040`-style escapes) at or under `dir`.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Deletes the bridge named in the agent's conflist, if it exists (`ip link delete`).
async fn delete_bridge(conflist: &Path) -> Option<String> {
    let text = std::fs::read_to_string(conflist).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let bridge = v["plugins"][0]["bridge"].as_str()?.to_owned();
    if !Path::new("/sys/class/net").join(&bridge).exists() {
        return None;
    }
    let out = tokio::process::Command::new("ip").args(["link", "delete", &bridge]).output().await.ok()?;
    if out.status.success() {
        Some(bridge)
    } else {
        tracing::warn!(%bridge, "ip link delete: {}", String::from_utf8_lossy(&out.stderr).trim());
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_under_a_dir() {
        let mi = "22 1 0:21 / /proc rw - proc proc rw\n\
                  90 30 0:50 / /tmp/d/agent/pods/u1/volumes/x rw - tmpfs tmpfs rw\n\
                  91 30 0:51 / /tmp/d/agent/with\\040space rw - tmpfs tmpfs rw\n\
                  92 30 0:52 / /tmp/dd rw - tmpfs tmpfs rw\n";
        let got = mounts_under(mi, Path::new("/tmp/d"));
        assert_eq!(got, [PathBuf::from("/tmp/d/agent/pods/u1/volumes/x"), PathBuf::from("/tmp/d/agent/with space")]);
    }

    #[test]
    fn no_containerd_for_an_unknown_config() {
        assert_eq!(containerd_pid(Path::new("/nonexistent/config.toml")), None);
    }
}
