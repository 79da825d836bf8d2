//! A real `rkube server --disable-agent` for these tests (the binary built by `cargo build -p rkube`; this
//! crate cannot name another package's binary, so it is found in the target dir or at `$RKUBE_BIN`).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server process (stopped by PID on drop) and its data dir.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    log: PathBuf,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RKUBE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/rkube");
    assert!(bin.exists(), "{} is missing: run `cargo build -p rkube` first (or set RKUBE_BIN)", bin.display());
    bin
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(binary())
            .args(["server", "--disable-agent", "--node-name", "test-node", "--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--https-listen-port", &port.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start rkube server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("is ready") {
                    let _ = tx.send(());
                }
            }
        });
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut s = Server { child, dir, kubeconfig, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while rx.recv_timeout(Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("rkube server exited with {status}:\n{}", s.log_tail());
            }
            assert!(Instant::now() < deadline, "rkube server not ready after 60 s:\n{}", s.log_tail());
        }
        s
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub async fn client(&self) -> kube::Client {
        let config = rkube_client::config::from_file(&self.kubeconfig).await.expect("kubeconfig");
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
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

/// Polls `f` until it returns `Some`, up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
