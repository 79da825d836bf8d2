//! The `rkube server` process the end-to-end benchmarks load: started on a free loopback port with its own
//! data dir, stopped by PID; and the measures taken of it (RSS) and the clients that reach it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A `rkube server` process with its own data dir, stopped (SIGTERM by PID, then SIGKILL) on drop.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
}

impl ServerProcess {
    /// The last lines of the server's log, for errors.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts a control-plane-only server on a free loopback port with `extra` flags and waits until ready.
pub(crate) fn start_server(rkube: &Path, extra: &[String]) -> anyhow::Result<ServerProcess> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut child = Command::new(rkube)
        .args(["server", "--disable-agent", "--node-name", "bench", "--bind-address", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--https-listen-port", &port.to_string()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", rkube.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let ready = wait_for_line(stdout, "is ready");
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let server = ServerProcess { child, _dir: dir, kubeconfig };
    anyhow::ensure!(ready.recv().unwrap_or(false), "the server did not become ready");
    Ok(server)
}

/// Reads a child's stdout until a line contains `marker` (sending true; false if the output ends first), then
/// keeps draining it: a child writing to a closed pipe dies of it (Rust's `println!` panics on EPIPE), and the
/// server prints its ready message over several lines.
pub(crate) fn wait_for_line(
    stdout: std::process::ChildStdout,
    marker: &'static str,
) -> std::sync::mpsc::Receiver<bool> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines().map_while(Result::ok);
        let _ = tx.send(lines.any(|l| l.contains(marker)));
        lines.for_each(drop);
    });
    rx
}

/// The resident set size of process `pid` in KiB (0 if it is gone).
pub(crate) fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The CPU time (user and system) process `pid` has used so far (zero if it is gone): a measure of work that,
/// unlike wall-clock time, hardly moves when other programs load the machine.
pub(crate) fn cpu_time(pid: u32) -> std::time::Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at `state`; utime and stime are the 12th
            // and 13th of them.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // Linux reports in USER_HZ, which is 100 on every architecture it supports.
    std::time::Duration::from_millis(ticks * 10)
}

/// A kube-rs client from a kubeconfig file.
pub(crate) async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
