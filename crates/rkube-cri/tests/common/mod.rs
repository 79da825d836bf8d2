//! A private containerd per test, and a guard that leaves nothing behind: on drop (also when the test fails)
//! it removes every pod sandbox through CRI (so no shim outlives the test), stops containerd (by its PID),
//! deletes the test's bridge, unmounts anything left under the test's directory and removes it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rkube_cri::{ContainerdConfig, Runtime, Supervisor, remove_all_pods};

/// A test's containerd, connected.
pub(crate) struct Node {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) supervisor: Option<Supervisor>,
    pub(crate) runtime: Runtime,
    /// A bridge the test's CNI config creates, deleted on drop.
    pub(crate) bridge: Option<String>,
}

/// A CNI network for the test: its bridge and subnet (a /24 of 10.233.0.0/16, no NAT, host-local IPAM kept
/// in the test's directory).
pub(crate) struct Network {
    pub(crate) bridge: &'static str,
    pub(crate) subnet: &'static str,
}

impl Node {
    /// Starts a containerd in a new temporary directory, with the pause image imported.
    pub(crate) async fn start(network: Option<Network>) -> Node {
        // Short path: the socket must fit in 107 bytes.
        let dir = tempfile::Builder::new().prefix("rkcri").tempdir_in("/tmp").unwrap();
        let config = ContainerdConfig::new(dir.path()).unwrap();
        if let Some(net) = &network {
            std::fs::create_dir_all(&config.cni_conf_dir).unwrap();
            let conflist = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": format!("{}-net", net.bridge),
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": net.bridge,
                        "isGateway": true,
                        "ipMasq": false,
                        "hairpinMode": true,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{ "subnet": net.subnet }]],
                            "dataDir": dir.path().join("ipam"),
                        },
                    },
                    { "type": "loopback" },
                ],
            });
            std::fs::write(config.cni_conf_dir.join("10-test.conflist"), conflist.to_string()).unwrap();
        }
        let mut node = Node {
            runtime: Runtime::connect_lazy(&config.socket()).unwrap(),
            bridge: network.map(|n| n.bridge.to_string()),
            supervisor: None,
            dir,
        };
        let supervisor = Supervisor::start(config).await.unwrap();
        node.runtime = Runtime::connect(&supervisor.endpoint()).await.unwrap();
        node.supervisor = Some(supervisor);
        rkube_cri::images::import_bytes(&node.socket(), rkube_cri::pause::IMAGE, &rkube_cri::pause::archive())
            .await
            .unwrap();
        node
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub(crate) fn supervisor(&self) -> &Supervisor {
        self.supervisor.as_ref().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let socket = self.socket();
        // CRI from a runtime of its own: the test's runtime is blocked in this drop.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(runtime) = Runtime::connect(&socket).await
                        && let Err(e) = remove_all_pods(&runtime).await
                    {
                        eprintln!("cleanup: removing pods: {e}");
                    }
                })
            });
        });
        if let Some(supervisor) = self.supervisor.take() {
            let pid = supervisor.pid();
            // Dropping it asks its task (on the test's multi-thread runtime) to stop containerd.
            drop(supervisor);
            let deadline = Instant::now() + Duration::from_secs(15);
            while pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(bridge) = &self.bridge {
            let _ = std::process::Command::new("ip").args(["link", "del", bridge]).status();
        }
        let dir = self.dir.path().to_string_lossy().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> =
            mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            eprintln!("cleanup: unmounting leftover {mount}");
            let _ = std::process::Command::new("umount").args(["-l", mount]).status();
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
