//! Test helpers: a real etcd (Debian's /usr/bin/etcd) in a temp dir, killed by PID on drop; network
//! namespaces removed on drop; running async code on a thread moved into a namespace.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd; killed (by its PID) and its data removed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    pub netns: Option<String>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Etcd {
    /// Starts etcd on `ip` (loopback ports in the host namespace when `netns` is None, else inside `netns`
    /// via `ip netns exec`, which execs etcd under the same PID).
    pub fn start(netns: Option<&str>, ip: &str) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (cp, pp) = if netns.is_some() { (2379, 2380) } else { (free_port(), free_port()) };
        let client = format!("http://{ip}:{cp}");
        let peer = format!("http://{ip}:{pp}");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "/usr/bin/etcd"]);
                c
            }
            None => Command::new("/usr/bin/etcd"),
        };
        cmd.args([
            "--name=test",
            &format!("--data-dir={}", dir.path().join("data").display()),
            &format!("--listen-client-urls={client}"),
            &format!("--advertise-client-urls={client}"),
            &format!("--listen-peer-urls={peer}"),
            &format!("--initial-advertise-peer-urls={peer}"),
            &format!("--initial-cluster=test={peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("etcd.log")).unwrap());
        let child = cmd.spawn().unwrap();
        let e = Etcd { child, endpoint: client, netns: netns.map(String::from), _dir: dir };
        eventually(Duration::from_secs(20), "etcd answers", || e.etcdctl(&["endpoint", "health"]).is_ok());
        e
    }

    /// Runs `ETCDCTL_API=3 etcdctl --endpoints=<this>` (inside the namespace when etcd is in one).
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcdctl"]);
                c
            }
            None => Command::new("etcdctl"),
        };
        let out =
            cmd.env("ETCDCTL_API", "3").arg(format!("--endpoints={}", self.endpoint)).args(args).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it holds or panics after `timeout`.
pub fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command, returning stdout; panics with stderr on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, returning whether it succeeded.
pub fn ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Network namespaces made by a test; all deleted on drop (their links and rules go with them).
pub struct Netns {
    pub names: Vec<String>,
    tag: usize,
}

static NEXT_TAG: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Netns {
    pub fn new() -> Netns {
        Netns { names: Vec::new(), tag: NEXT_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }
    }
    /// Creates `rkn<pid>-<tag>-<suffix>` and returns its name.
    pub fn add(&mut self, suffix: &str) -> String {
        let name = format!("rkn{}-{}-{suffix}", std::process::id(), self.tag);
        sh(&["ip", "netns", "add", &name]);
        self.names.push(name.clone());
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// A "physical" network: a bridge in namespace `phys` with `nodes` namespaces attached by veths; node i
/// (1-based) has `eth0` = 10.99.0.i/24, the bridge has 10.99.0.100/24.
pub fn physical_network(ns: &mut Netns, nodes: usize) -> (String, Vec<String>) {
    let phys = ns.add("phys");
    sh(&["ip", "-n", &phys, "link", "add", "br0", "type", "bridge"]);
    sh(&["ip", "-n", &phys, "addr", "add", "10.99.0.100/24", "dev", "br0"]);
    sh(&["ip", "-n", &phys, "link", "set", "br0", "up"]);
    let mut names = Vec::new();
    for i in 1..=nodes {
        let n = ns.add(&format!("n{i}"));
        let port = format!("p{i}");
        sh(&["ip", "-n", &n, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &phys]);
        sh(&["ip", "-n", &n, "addr", "add", &format!("10.99.0.{i}/24"), "dev", "eth0"]);
        sh(&["ip", "-n", &n, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &phys, "link", "set", &port, "master", "br0", "up"]);
        names.push(n);
    }
    (phys, names)
}

/// Runs `f` to completion on a new thread moved into network namespace `ns` (a current-thread runtime, so
/// every socket and child process it makes lives there).
pub fn spawn_in_ns<T: Send + 'static, F: Future<Output = T> + 'static>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(f())
    })
}

/// Runs `f` in namespace `ns` and waits for it.
pub fn in_ns<T: Send + 'static, F: Future<Output = T> + 'static>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    spawn_in_ns(ns, f).join().unwrap()
}

/// Runs blocking `f` on a new thread moved into network namespace `ns`.
pub fn blocking_in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        f()
    })
}

/// Whether a TCP connection from namespace `from` reaches `ip` (listened on in namespace `to`) and carries
/// bytes both ways (this machine has no `ping`).
pub fn tcp_reach(from: &str, to: &str, ip: &str) -> bool {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:7777").parse().unwrap();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let server = blocking_in_ns(to, move || {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        bound_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok((mut s, _)) = l.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).is_ok() && &b == b"ping" {
                    return s.write_all(b"pong").is_ok();
                }
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    bound_rx.recv().unwrap();
    let client = blocking_in_ns(from, move || {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 4];
        s.write_all(b"ping").is_ok() && s.read_exact(&mut b).is_ok() && &b == b"pong"
    });
    let c = client.join().unwrap();
    let s = server.join().unwrap();
    c && s
}
