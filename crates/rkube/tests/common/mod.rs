//! Shared helpers for the end-to-end tests: a real `rkube server` process on a free loopback port,
//! and the real kubectl binaries (1.27 to 1.33) pointed at it.
#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A node sharing the host's network namespace with other tests' nodes: a node-local bridge instead of the
/// pod network (flannel.1 and iptables rules would clash between nodes) and no service proxy or DNS (they
/// program the namespace's iptables and bind port 53). Multi-node behaviour is tested on `rkube cluster`.
/// Such a node routes nothing (its pods reach each other over the bridge and the host at its own addresses),
/// so a host with forwarding off (a fresh VM) is not refused for it: the tests must not turn forwarding on in
/// the host's namespace.
pub const HOST_NODE_ARGS: &[&str] = &[
    "--flannel-backend",
    "none",
    "--disable-proxy",
    "--disable-dns",
    "--ignore-preflight-errors",
    "net.ipv4.ip_forward",
];

/// A running `rkube server` with its own data dir; killed (by PID) and cleaned up on drop.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub kubeconfig: PathBuf,
    log: PathBuf,
    /// Set for a server with its embedded node agent (`start_with_agent`).
    agent: Option<AgentNode>,
}

/// What a server's embedded agent holds on the host, released when the server is dropped.
struct AgentNode {
    name: String,
    bridge: String,
    kubelet_port: u16,
    /// This node's `/24` in 10.231.0.0/16, reserved among the tests running on this host by a lock file.
    subnet: std::net::Ipv4Addr,
    _subnet_lock: std::fs::File,
}

/// A signal for the "is ready" line on the child's stdout (read to its end on a thread, so the child never
/// blocks on a full pipe).
fn ready_signal(child: &mut Child) -> std::sync::mpsc::Receiver<()> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("is ready") {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// Starts `cmd` (an `rkube server` or `agent`; its stdout is taken for the ready line) and waits up to `secs` for
/// "is ready"; panics with `log_tail()` if it exits first or takes longer.
pub fn spawn_until_ready(cmd: &mut Command, secs: u64, log_tail: &dyn Fn() -> String) -> Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start rkube");
    let rx = ready_signal(&mut child);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while rx.recv_timeout(Duration::from_millis(100)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rkube exited with {status} before it was ready:\n{}", log_tail());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rkube not ready within {secs} s:\n{}", log_tail());
        }
    }
    child
}

/// A free TCP port on 127.0.0.1 (bound and released; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Server {
    /// Starts a control-plane-only server and waits until it says it is ready.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["server", "--disable-agent", "--node-name", "test-node", "--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--https-listen-port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start rkube server");
        let rx = ready_signal(&mut child);
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut server = Server { child, dir, port, kubeconfig, log, agent: None };
        server.wait_ready(&rx, 60, "it was ready");
        server
    }

    /// Waits up to `secs` for the server's "is ready" line; panics with the log tail if it exits or times out.
    fn wait_ready(&mut self, rx: &std::sync::mpsc::Receiver<()>, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while rx.recv_timeout(Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rkube server exited with {status} before {what}:\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "rkube server: not within {secs} s: {what}:\n{}", self.log_tail());
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs kubectl `version` (e.g. "1.33") with this server's admin kubeconfig.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Output {
        kubectl_with(version, &self.kubeconfig, args, None)
    }

    /// Runs kubectl with stdin.
    pub fn kubectl_stdin(&self, version: &str, args: &[&str], stdin: &str) -> Output {
        kubectl_with(version, &self.kubeconfig, args, Some(stdin))
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn ok(&self, version: &str, args: &[&str]) -> String {
        let out = self.kubectl(version, args);
        assert!(
            out.status.success(),
            "kubectl {} {:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
            version,
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn fails(&self, version: &str, args: &[&str]) -> String {
        let out = self.kubectl(version, args);
        assert!(
            !out.status.success(),
            "kubectl {version} {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM by PID, then SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    /// Kills the server with SIGKILL (a crash: nothing is released) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops a process this test started: SIGTERM by its PID, up to 10 s to exit, then SIGKILL.
pub fn stop_child(child: &mut Child) {
    // Already reaped (stopped before, or exited): its PID may belong to another process by now.
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if self.agent.is_some() {
            // The stopped agent leaves its pods running (as a kubelet does): remove them, its mounts and bridge.
            let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
                .args(["agent", "clean", "--data-dir"])
                .arg(self.dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!("rkube agent clean failed:\n{}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => eprintln!("rkube agent clean: {e}"),
            }
        }
    }
}

/// The path of kubectl 1.XX, or `None` if this machine does not have it.
pub fn kubectl_path(version: &str) -> Option<PathBuf> {
    let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}"));
    p.exists().then_some(p)
}

/// Runs a kubectl binary with a kubeconfig.
pub fn kubectl_with(version: &str, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let bin = kubectl_path(version).unwrap_or_else(|| {
        panic!("kubectl {version} is not installed at /usr/lib/google-cloud-sdk/bin/kubectl.{version}")
    });
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")));
    match stdin {
        None => cmd.output().expect("run kubectl"),
        Some(input) => {
            use std::io::Write;
            let mut child =
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run kubectl");
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
            child.wait_with_output().expect("kubectl output")
        }
    }
}

/// A second `rkube server` on the data dir (and so the store) of a running one: a standby controller manager.
pub struct Peer {
    pub child: std::process::Child,
    pub kubeconfig: std::path::PathBuf,
    pub log: std::path::PathBuf,
}

impl Peer {
    pub fn start(dir: &std::path::Path) -> Peer {
        let kubeconfig = dir.join("peer-kubeconfig.yaml");
        let log = dir.join("peer.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rkube"))
            // As the harness starts the first server: same node name and address, so the serving certificate fits both.
            .args(["server", "--disable-agent", "--node-name", "test-node", "--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir)
            .args(["--https-listen-port", &free_port().to_string()])
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("peer log"))
            .spawn()
            .expect("start the peer server");
        let rx = ready_signal(&mut child);
        let peer = Peer { child, kubeconfig, log };
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok(),
            "peer not ready:\n{}",
            std::fs::read_to_string(&peer.log).unwrap_or_default()
        );
        peer
    }

    pub fn kubectl(&self, args: &[&str]) -> Option<String> {
        let out = kubectl_with("1.33", &self.kubeconfig, args, None);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Polls `check` every 200 ms until it holds, failing with `what` and the server log after `secs` seconds.
pub fn eventually(s: &Server, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}\nserver log:\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// kubectl 1.33 `<args> -o json`, parsed; panics if kubectl fails.
pub fn json(s: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.ok("1.33", &all)).expect("kubectl -o json")
}

/// kubectl 1.33 `apply -f -` of `manifest`; panics if it fails.
pub fn apply(s: &Server, manifest: &str) {
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], manifest);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// A running `rkube sim nodes` (simulated nodes, see `rkube-simnode`); killed by PID when dropped, so also
/// when a test fails.
pub struct Sim {
    child: Child,
}

impl Sim {
    /// Starts `rkube sim nodes --kubeconfig <kubeconfig> <args>` and waits until it says its nodes are ready.
    pub fn start_with(kubeconfig: &Path, log: &Path, args: &[&str]) -> Sim {
        use std::sync::mpsc::RecvTimeoutError;
        let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["sim", "nodes", "--kubeconfig"])
            .arg(kubeconfig)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("sim log"))
            .spawn()
            .expect("start rkube sim nodes");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // From here on the guard owns the process.
        let sim = Sim { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.ends_with("simulated nodes ready") => return sim,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("rkube sim nodes exited:\n{}", std::fs::read_to_string(log).unwrap_or_default())
                }
            }
            assert!(
                Instant::now() < deadline,
                "simulated nodes not ready after 60 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    /// Starts simulated nodes against `s` with `args` (e.g. `["--count", "3"]`), logging into its data dir.
    pub fn start(s: &Server, args: &[&str]) -> Sim {
        let log = s.dir.path().join(format!("sim-{}.log", free_port()));
        Sim::start_with(&s.kubeconfig, &log, args)
    }

    /// The process id (to kill it on purpose).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the simulator now (its nodes stay registered; their Leases stop being renewed).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reserves a `/24` in 10.231.0.0/16 no other test on this host holds (an exclusive lock on a file per subnet,
/// released by the kernel when the holder exits, however it exits).
pub fn reserve_subnet() -> (std::net::Ipv4Addr, std::fs::File) {
    let dir = Path::new("/tmp/rkube-test-subnets");
    std::fs::create_dir_all(dir).expect("subnet lock dir");
    let start = (std::process::id() as usize + free_port() as usize) % 256;
    for i in 0..256 {
        let third = ((start + i) % 256) as u8;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("10.231.{third}.0-24.lock")))
            .expect("subnet lock file");
        if file.try_lock().is_ok() {
            return (std::net::Ipv4Addr::new(10, 231, third, 0), file);
        }
    }
    panic!("all 256 test subnets in 10.231.0.0/16 are in use");
}

impl Server {
    /// Starts a server with its embedded node agent (its own containerd under the data dir, a CNI bridge
    /// `rk<port>` and a pod subnet of its own, the kubelet on a free port) and waits until the node is Ready.
    /// The API listens on every address so pods reach it at their gateway. Dropping it stops the server and
    /// runs `rkube agent clean`, so no pod, mount or bridge outlives the test.
    pub fn start_with_agent(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let kubelet_port = free_port();
        let (subnet, lock) = reserve_subnet();
        let name = format!("node-{port}");
        let bridge = format!("rk{port}");
        let gateway = std::net::Ipv4Addr::from(u32::from(subnet) + 1).to_string();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["server", "--node-name", &name, "--bind-address", "0.0.0.0", "--tls-san", &gateway])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--https-listen-port", &port.to_string()])
            .args(["--kubelet-port", &kubelet_port.to_string(), "--cni-bridge", &bridge])
            .args(HOST_NODE_ARGS)
            .args(["--cluster-cidr", &format!("{subnet}/24"), "--node-cidr-mask-size", "24"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start rkube server");
        let rx = ready_signal(&mut child);
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let agent = AgentNode { name, bridge, kubelet_port, subnet, _subnet_lock: lock };
        // From here on Drop cleans up, also when the start fails.
        let mut server = Server { child, dir, port, kubeconfig, log, agent: Some(agent) };
        server.wait_ready(&rx, 90, "its node was ready");
        server
    }

    fn agent(&self) -> &AgentNode {
        self.agent.as_ref().expect("a server started with start_with_agent")
    }

    /// The embedded agent's node name.
    pub fn node_name(&self) -> String {
        self.agent().name.clone()
    }

    /// The agent's CNI bridge.
    pub fn bridge(&self) -> String {
        self.agent().bridge.clone()
    }

    /// The agent API's port (the kubelet port).
    pub fn kubelet_port(&self) -> u16 {
        self.agent().kubelet_port
    }

    /// The node's pod subnet (`10.231.X.0/24`).
    pub fn pod_subnet(&self) -> String {
        format!("{}/24", self.agent().subnet)
    }

    /// The agent's containerd socket (for `rkube images --container-runtime-endpoint` and CRI clients).
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("agent/containerd/containerd.sock")
    }

    /// The PID of the containerd the agent supervises now (found by its `--config` in /proc).
    pub fn containerd_pid(&self) -> Option<u32> {
        rkube_agent::clean::containerd_pid(&self.dir.path().join("agent/containerd/config.toml"))
    }

    /// `rkube images <args> --data-dir <this server's>`: its output.
    pub fn images(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("images")
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .output()
            .expect("run rkube images")
    }

    /// Imports an image archive (OCI layout or docker-archive tar) into the node's runtime; panics on failure.
    pub fn import_image(&self, tar: &[u8]) {
        let file = self.dir.path().join(format!("image-{}.tar", free_port()));
        std::fs::write(&file, tar).expect("write the image archive");
        let out = self.images(&["import", file.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "rkube images import failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Builds a busybox image named `name` (e.g. `busybox:test`) from the host's busybox-static and imports it.
    pub fn import_busybox(&self, name: &str) {
        let tar = rkube_cri::oci::busybox_image(name).expect("build the busybox image");
        self.import_image(&tar);
    }
}

/// Every object of `kinds` (kubectl's comma list) in every namespace as kubectl shows it, sorted, without what
/// differs between a cluster and its restored copy: resourceVersions, and cluster-info's `server:` line (each
/// server writes its own address at start; everything else of it, the CA included, must match).
pub fn comparable_objects(kinds: &str, kubectl: impl Fn(&[&str]) -> String) -> Vec<serde_json::Value> {
    let list: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", kinds, "-A", "-o", "json"])).expect("kubectl -o json");
    let mut items: Vec<serde_json::Value> = list["items"].as_array().expect("items").clone();
    for item in &mut items {
        if let Some(meta) = item["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        if item["metadata"]["name"] == "cluster-info"
            && let Some(kubeconfig) = item["data"]["kubeconfig"].as_str()
        {
            let lines: Vec<&str> = kubeconfig.lines().filter(|l| !l.trim_start().starts_with("server:")).collect();
            item["data"]["kubeconfig"] = lines.join("\n").into();
        }
    }
    items.sort_by_key(|i| format!("{}/{}/{}", i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]));
    items
}
