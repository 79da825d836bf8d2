//! Multi-node tests on `rkube cluster`: [`Cluster::up`] makes a cluster with a name of its own (nodes in
//! network namespaces, so tests in parallel never clash), and dropping it (also when the test panics) runs
//! `rkube cluster down`, which leaves no process, pod, mount, namespace or link behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where test clusters keep their state (`RKUBE_CLUSTER_DIR` of the `rkube cluster` commands the harness runs).
pub const TEST_CLUSTERS_DIR: &str = "/tmp/rkube-test-clusters";

/// Flags for a cluster whose nodes run neither the pod network between nodes nor the service proxy and DNS.
pub const NO_NETWORK: &[&str] = &["--backend", "none", "--no-services"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running `rkube cluster`, removed when dropped.
pub struct Cluster {
    /// The cluster's name (`t<pid>-<n>`).
    pub name: String,
    /// Its state directory (node `nX`'s data directory is `<dir>/nX`).
    pub dir: PathBuf,
    /// The admin kubeconfig (kubectl on the host).
    pub kubeconfig: PathBuf,
    /// How many nodes.
    pub nodes: u32,
    /// What `up` printed.
    pub up_output: String,
}

/// `rkube cluster <args>` with the test clusters' directory.
pub fn rkube_cluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkube"))
        .arg("cluster")
        .args(args)
        .env("RKUBE_CLUSTER_DIR", TEST_CLUSTERS_DIR)
        .stdin(Stdio::null())
        .output()
        .expect("run rkube cluster")
}

/// A cluster name no other test (of this or another test process) uses.
pub fn unique_name() -> String {
    format!("t{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Removes clusters left by test processes that no longer run (killed before their Drop could run).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(TEST_CLUSTERS_DIR) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix('t').and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = rkube_cluster(&["down", &name]);
        }
    }
}

impl Cluster {
    /// The network namespace (`/proc/PID/ns/net`) of pod `pod`, whose container runs busybox `httpd` serving a
    /// directory named `/w-<pod>-<cluster name>` (unique on this machine, so its process is found by it).
    pub fn pod_netns(&self, pod: &str) -> String {
        let marker = format!("/w-{pod}-{}", self.name);
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.starts_with("httpd") && cmdline.contains(&marker) {
                    return e.path().join("ns/net").display().to_string();
                }
            }
        }
        panic!("no httpd process of pod {pod}");
    }

    /// `rkube cluster up <args>` under a fresh name (3 nodes unless `args` has `--nodes N`); panics with up's
    /// output if it fails. `args` may hold `--backend`, `--etcd`, `--no-services`, `--node-arg=...`.
    pub fn up(args: &[&str]) -> Cluster {
        Cluster::up_named(&unique_name(), args)
    }

    /// [`Cluster::up`] with a name from [`unique_name`] taken before.
    pub fn up_named(name: &str, args: &[&str]) -> Cluster {
        sweep_stale();
        let name = name.to_owned();
        let mut all = vec!["up", "--name", &name];
        if !args.iter().any(|a| *a == "--nodes" || a.starts_with("--nodes=")) {
            all.extend(["--nodes", "3"]);
        }
        all.extend_from_slice(args);
        let nodes = all.windows(2).find(|w| w[0] == "--nodes").map_or(3, |w| w[1].parse().expect("--nodes N"));
        let out = rkube_cluster(&all);
        let up_output = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "rkube cluster {all:?} failed:\n{up_output}");
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let dir = Path::new(TEST_CLUSTERS_DIR).join(&name);
        Cluster { name, dir, kubeconfig, nodes, up_output }
    }

    /// `rkube cluster <sub> <this cluster> <rest>`.
    pub fn cmd(&self, sub: &str, rest: &[&str]) -> Output {
        let mut all = vec![sub, self.name.as_str()];
        all.extend_from_slice(rest);
        rkube_cluster(&all)
    }

    /// Runs kubectl 1.33 with the cluster's admin kubeconfig.
    pub fn kubectl_out(&self, args: &[&str]) -> Output {
        super::kubectl_with("1.33", &self.kubeconfig, args, None)
    }

    /// Runs kubectl 1.33 and asserts success; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_out(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}\nn1's log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail("n1")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl 1.33 `apply -f -` of `manifest`; panics if it fails.
    pub fn apply(&self, manifest: &str) {
        let out = super::kubectl_with("1.33", &self.kubeconfig, &["apply", "-f", "-"], Some(manifest));
        assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// kubectl 1.33 `<args> -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl -o json")
    }

    /// Runs `cmd` in node `node`'s network namespace (`rkube cluster exec`); its output, whatever its status.
    pub fn exec_out(&self, node: &str, cmd: &[&str]) -> Output {
        let mut all = vec![node, "--"];
        all.extend_from_slice(cmd);
        self.cmd("exec", &all)
    }

    /// Runs `cmd` in node `node`'s network namespace; asserts success; returns stdout.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> String {
        let out = self.exec_out(node, cmd);
        assert!(
            out.status.success(),
            "{cmd:?} in {node} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports an image archive into every node (`rkube cluster load`).
    pub fn load(&self, archive: &Path) {
        let out = self.cmd("load", &[archive.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "rkube cluster load failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Builds the busybox test image `name` (e.g. `busybox:test`, from the host's busybox-static; see
    /// `rkube_cri::oci::busybox_image`) and loads it into every node.
    pub fn load_busybox(&self, name: &str) {
        let tar = rkube_cri::oci::busybox_image(name).expect("build the busybox image");
        let file = std::env::temp_dir().join(format!("{}-busybox.tar", self.name));
        std::fs::write(&file, tar).expect("write the image archive");
        let out = self.cmd("load", &[file.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(&file);
        assert!(out.status.success(), "rkube cluster load failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Kills node `node`'s rkube and containerd with SIGKILL, as a crash would (`rkube cluster stop`).
    pub fn stop(&self, node: &str) {
        let out = self.cmd("stop", &[node]);
        assert!(out.status.success(), "rkube cluster stop failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts node `node` again and waits for its ready line (`rkube cluster start`).
    pub fn start(&self, node: &str) {
        let out = self.cmd("start", &[node]);
        assert!(
            out.status.success(),
            "rkube cluster start failed:\n{}\n{node}'s log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(node)
        );
    }

    /// `etcdctl <args>` (API v3) against the cluster's etcd (`--etcd`), run inside the cluster namespace;
    /// asserts success, returns stdout.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/rkc-{}", self.name))
            .args(["--", "env", "ETCDCTL_API=3", "etcdctl", "--endpoints=http://192.168.77.2:2379"])
            .args(args)
            .output()
            .expect("run etcdctl");
        assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Node `node`'s network namespace (`rkc-<cluster>-nX`).
    pub fn netns(&self, node: &str) -> String {
        format!("rkc-{}-{node}", self.name)
    }

    /// Node `node`'s data directory.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join(node)
    }

    /// Node `node`'s address on the cluster network (`n2` → 192.168.77.12).
    pub fn node_ip(&self, node: &str) -> String {
        let i: u8 = node.trim_start_matches('n').parse().expect("a node like n2");
        format!("192.168.77.{}", 10 + i)
    }

    /// The last 40 lines of node `node`'s log.
    pub fn log_tail(&self, node: &str) -> String {
        let text = std::fs::read_to_string(self.node_dir(node).join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Polls `check` every 250 ms until it holds; fails with `what` and n1's log after `secs`.
    pub fn eventually(&self, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !check() {
            assert!(Instant::now() < deadline, "not within {secs} s: {what}\nn1's log:\n{}", self.log_tail("n1"));
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until every node is Ready (after a start, say).
    pub fn wait_all_ready(&self, secs: u64) {
        self.eventually(secs, "every node Ready", || {
            let out = self.kubectl_out(&["get", "nodes", "--no-headers"]);
            let text = String::from_utf8_lossy(&out.stdout);
            text.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count() == self.nodes as usize
        });
    }

    /// `rkube cluster down`, asserting it succeeds (Drop does it too, without asserting).
    pub fn down(self) {
        let out = self.cmd("down", &[]);
        let name = self.name.clone();
        std::mem::forget(self);
        assert!(out.status.success(), "rkube cluster down {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.cmd("down", &[]);
        if !out.status.success() {
            eprintln!("rkube cluster down {} failed:\n{}", self.name, String::from_utf8_lossy(&out.stderr));
        }
    }
}
