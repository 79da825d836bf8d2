//! The node under test: a `rkube server` and an `rkube agent` (with its own containerd) in one temporary
//! data dir, with its own CNI bridge and pod subnet; the busybox image imported into it; the host processes it
//! runs (containerd, shims) found for measures; and its removal, checked afterwards for anything left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::server::{ServerProcess, rss_kb};

/// The image the benchmark's pods run, imported from the host's static busybox.
pub(crate) const IMAGE: &str = "busybox:rkube-bench-node";

/// A control-plane server (`--disable-agent`) and a node agent as its own process (`rkube agent`), so the
/// agent's memory and CPU are measured apart from the control plane's. Dropping it stops both by PID, runs
/// `rkube agent clean` on the data dir (pods, containerd, mounts, bridge), then removes the data dir.
pub(crate) struct NodeServer {
    server: Option<ServerProcess>,
    agent: Option<ServerProcess>,
    data: tempfile::TempDir,
    rkube: PathBuf,
    bridge: String,
    subnet: String,
}

/// Whatever the node left on the host after its removal (all empty when the removal was complete).
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    pub(crate) processes: Vec<u32>,
    pub(crate) mounts: Vec<String>,
    pub(crate) bridge: bool,
    /// What `rkube agent clean` printed (or why it failed).
    pub(crate) clean: String,
    pub(crate) clean_failed: bool,
}

impl Leftovers {
    pub(crate) fn is_clean(&self) -> bool {
        self.processes.is_empty() && self.mounts.is_empty() && !self.bridge && !self.clean_failed
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A /24 in 10.232.0.0/16 no address or route of this host uses yet.
fn free_subnet() -> anyhow::Result<String> {
    let text =
        |args: &[&str]| Command::new("ip").args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let used = format!("{}\n{}", text(&["-4", "-o", "addr"])?, text(&["-4", "route"])?);
    let start = std::process::id() as usize;
    (0..256)
        .map(|i| (start + i) % 256)
        .map(|third| format!("10.232.{third}."))
        .find(|prefix| !used.contains(prefix.as_str()))
        .map(|prefix| format!("{prefix}0/24"))
        .context("every /24 of 10.232.0.0/16 is in use on this host")
}

impl NodeServer {
    /// Starts the server, then the agent, and waits (up to 120 s each) until each says it is ready (the agent
    /// does once its node posted Ready).
    pub(crate) fn start(rkube: &Path) -> anyhow::Result<NodeServer> {
        let data = tempfile::Builder::new().prefix("rkube-bench-node-").tempdir()?;
        let (port, kubelet_port, subnet) = (free_port()?, free_port()?, free_subnet()?);
        let bridge = format!("rkb{port}");
        let server = [
            "server",
            "--disable-agent",
            "--node-name",
            "bench-server",
            "--bind-address",
            "127.0.0.1",
            "--https-listen-port",
            &port.to_string(),
            "--cluster-cidr",
            &subnet,
            "--node-cidr-mask-size",
            "24",
        ];
        let (server, server_out) = spawn(rkube, &server, data.path())?;
        let kubeconfig = server.kubeconfig.clone();
        // From here on Drop stops what runs and cleans the node, also when the start fails.
        let mut node =
            NodeServer { server: Some(server), agent: None, data, rkube: rkube.to_path_buf(), bridge, subnet };
        wait_ready(server_out, "the server", &node)?;
        let tls = node.data.path().join("server/tls");
        let file = |name: &str| tls.join(name).to_string_lossy().into_owned();
        let agent = [
            "agent",
            "--server",
            &format!("https://127.0.0.1:{port}"),
            "--node-name",
            "bench-node",
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            // The API server's serving certificate (it names 127.0.0.1) stands in for the node's.
            "--tls-cert-file",
            &file("serving-kube-apiserver.crt"),
            "--tls-private-key-file",
            &file("serving-kube-apiserver.key"),
            "--client-ca-file",
            &file("ca.crt"),
            "--kubelet-port",
            &kubelet_port.to_string(),
            "--cni-bridge",
            &node.bridge,
            // The host's own network namespace: a node-local bridge, no proxy or DNS (as upstream's kubelet alone).
            "--flannel-backend",
            "none",
            "--disable-proxy",
            "--disable-dns",
        ];
        let (agent, agent_out) = spawn(rkube, &agent, node.data.path())?;
        node.agent = Some(agent);
        wait_ready(agent_out, "the agent's node", &node)?;
        Ok(node)
    }

    fn server(&self) -> anyhow::Result<&ServerProcess> {
        self.server.as_ref().context("the server was stopped")
    }

    /// The server's PID (API server, controllers, scheduler, store).
    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.server()?.child.id())
    }

    /// The agent's PID (kubelet, agent API, node status; containerd is its child process).
    pub(crate) fn agent_pid(&self) -> anyhow::Result<u32> {
        Ok(self.agent.as_ref().context("the agent was stopped")?.child.id())
    }

    pub(crate) fn kubeconfig(&self) -> anyhow::Result<&Path> {
        Ok(&self.server()?.kubeconfig)
    }

    pub(crate) fn bridge(&self) -> &str {
        &self.bridge
    }

    pub(crate) fn subnet(&self) -> &str {
        &self.subnet
    }

    pub(crate) fn log_tail(&self) -> String {
        let tail = |p: &Option<ServerProcess>| p.as_ref().map(ServerProcess::log_tail).unwrap_or_default();
        format!("server:\n{}\nagent:\n{}", tail(&self.server), tail(&self.agent))
    }

    fn containerd_socket(&self) -> PathBuf {
        self.data.path().join("agent/containerd/containerd.sock")
    }

    /// The PID of the containerd the agent supervises (from the pid file its supervisor writes).
    pub(crate) fn containerd_pid(&self) -> Option<u32> {
        let file = self.data.path().join("agent/containerd/containerd.pid");
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Builds the busybox image and imports it with `rkube images import`, as a user would.
    pub(crate) fn import_busybox(&self) -> anyhow::Result<()> {
        let tar = rkube_cri::oci::busybox_image(IMAGE).context("building the busybox image")?;
        let file = self.data.path().join("busybox.tar");
        std::fs::write(&file, tar).with_context(|| format!("writing {}", file.display()))?;
        let out = Command::new(&self.rkube)
            .arg("images")
            .arg("import")
            .arg(&file)
            .arg("--data-dir")
            .arg(self.data.path())
            .output()
            .context("running rkube images import")?;
        let _ = std::fs::remove_file(&file);
        anyhow::ensure!(
            out.status.success(),
            "rkube images import failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The containerd shims serving this node's pods (their `-address` is this node's containerd socket).
    pub(crate) fn shims(&self) -> Vec<u32> {
        processes_with_arg(&self.containerd_socket())
    }

    /// The total RSS of the shims in KiB.
    pub(crate) fn shims_rss_kb(&self) -> u64 {
        self.shims().into_iter().map(rss_kb).sum()
    }

    /// Stops the server (SIGTERM by PID, SIGKILL after 10 s), cleans the node, and reports what is left.
    pub(crate) fn stop(&mut self) -> Leftovers {
        let Some(server) = self.server.take() else { return Leftovers::default() };
        // The agent first (SIGTERM by PID, as ServerProcess's Drop does), while the API still answers.
        drop(self.agent.take());
        drop(server);
        let clean = Command::new(&self.rkube).args(["agent", "clean", "--data-dir"]).arg(self.data.path()).output();
        let (clean, clean_failed) = match clean {
            Ok(o) if o.status.success() => (String::from_utf8_lossy(&o.stdout).trim().to_owned(), false),
            Ok(o) => (format!("rkube agent clean failed: {}", String::from_utf8_lossy(&o.stderr).trim()), true),
            Err(e) => (format!("rkube agent clean could not run: {e}"), true),
        };
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let dir = self.data.path().to_string_lossy().into_owned();
        Leftovers {
            processes: processes_with_arg(self.data.path()),
            mounts: mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| m.starts_with(&dir))
                .map(str::to_owned)
                .collect(),
            bridge: Path::new("/sys/class/net").join(&self.bridge).exists(),
            clean,
            clean_failed,
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        if self.server.is_some() {
            let left = self.stop();
            if !left.is_clean() {
                eprintln!("[node bench] left behind after cleaning: {left:?}");
            }
        }
    }
}

/// Starts `rkube ARGS --data-dir DIR` with its stderr in a log of its own; returns it and its stdout.
fn spawn(rkube: &Path, args: &[&str], dir: &Path) -> anyhow::Result<(ServerProcess, std::process::ChildStdout)> {
    let logs = tempfile::tempdir()?;
    let log = std::fs::File::create(logs.path().join("server.log"))?;
    let mut child = Command::new(rkube)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {} {}", rkube.display(), args[0]))?;
    let stdout = child.stdout.take().context("stdout")?;
    Ok((ServerProcess { child, _dir: logs, kubeconfig: dir.join("kubeconfig.yaml") }, stdout))
}

/// Waits up to 120 s for the "is ready" line on `stdout` (read to its end on a thread, so the child never
/// blocks on a full pipe).
fn wait_ready(stdout: std::process::ChildStdout, what: &str, node: &NodeServer) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("is ready") {
                let _ = tx.send(());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(()) => Ok(()),
        Err(_) => anyhow::bail!("{what} was not ready within 120 s:\n{}", node.log_tail()),
    }
}

/// Processes (other than this one) with an argument that contains `needle`: the node's containerd, its shims.
fn processes_with_arg(needle: &Path) -> Vec<u32> {
    let needle = needle.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let hit = cmdline.split(|b| *b == 0).any(|arg| arg.windows(needle.len()).any(|w| w == needle));
            (hit && pid != me).then_some(pid)
        })
        .collect()
}

/// The first line `program --version` prints, for the report.
pub(crate) fn version(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{program} (version unknown)"))
}

/// The 1-minute load average.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Polls `done` every 200 ms until it holds or `limit` passes; returns whether it held.
pub(crate) async fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
