//! Helpers of the pod-network e2e tests (`tests/pod_network.rs`): network namespaces joined by a bridge in a
//! "physical network" namespace, Debian's etcd inside it, and `rkube server` nodes started in a node namespace
//! with `nsenter --net` (kubectl and curl reach them the same way). Everything is removed on drop.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub(crate) const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
pub(crate) const IMAGE: &str = "busybox:pn";
pub(crate) const PREFIX: &str = "/kube-centos/network";

pub(crate) static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs a command; panics with its stderr on failure; returns stdout.
pub(crate) fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run a command");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nsenter --net=/run/netns/<ns>` with `args`.
pub(crate) fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}")).arg("--").args(args);
    c
}

pub(crate) fn poll(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The test's namespaces: a "physical network" (bridge `br0`, 192.168.77.1/24) and node namespaces whose
/// `eth0` (192.168.77.1N/24, default route via the bridge) hangs off it. Deleted on drop.
pub(crate) struct Lan {
    pub(crate) names: Vec<String>,
    pub(crate) lan: String,
}

impl Lan {
    pub(crate) fn new() -> Lan {
        let tag = format!("rkpn{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let lan = format!("{tag}-lan");
        let mut l = Lan { names: Vec::new(), lan: lan.clone() };
        l.add_ns(&lan);
        sh(&["ip", "-n", &lan, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &lan, "addr", "add", "192.168.77.1/24", "dev", "br0"]);
        sh(&["ip", "-n", &lan, "link", "set", "br0", "up"]);
        l
    }

    pub(crate) fn add_ns(&mut self, name: &str) {
        sh(&["ip", "netns", "add", name]);
        self.names.push(name.to_owned());
        sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
    }

    /// Adds node namespace `i` (1-based) and returns its name.
    pub(crate) fn node(&mut self, i: u8) -> String {
        let ns = format!("{}-n{i}", self.lan.trim_end_matches("-lan"));
        self.add_ns(&ns);
        let port = format!("p{i}");
        sh(&["ip", "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &self.lan]);
        sh(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", node_ip(i)), "dev", "eth0"]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &ns, "route", "add", "default", "via", "192.168.77.1"]);
        sh(&["ip", "-n", &self.lan, "link", "set", &port, "master", "br0", "up"]);
        ns
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

pub(crate) fn node_ip(i: u8) -> String {
    format!("192.168.77.{}", 10 + i)
}

/// Debian's etcd inside the lan namespace on 192.168.77.1:2379; killed by PID on drop.
pub(crate) struct Etcd {
    child: Child,
    pub(crate) ns: String,
    _dir: tempfile::TempDir,
}

pub(crate) const ETCD: &str = "http://192.168.77.1:2379";

impl Etcd {
    pub(crate) fn start(ns: &str) -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = in_ns(ns, &["/usr/bin/etcd", "--name=pn"])
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .args(["--listen-client-urls", ETCD, "--advertise-client-urls", ETCD])
            .args(["--listen-peer-urls", "http://192.168.77.1:2380"])
            .args(["--initial-advertise-peer-urls", "http://192.168.77.1:2380"])
            .args(["--initial-cluster", "pn=http://192.168.77.1:2380"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log"))
            .spawn()
            .expect("start etcd");
        let e = Etcd { child, ns: ns.to_owned(), _dir: dir };
        poll(20, "etcd answers", || e.ctl(&["endpoint", "health"]).is_ok());
        e
    }

    pub(crate) fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = in_ns(&self.ns, &["etcdctl", &format!("--endpoints={ETCD}")])
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .expect("run etcdctl");
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rkube server` with its embedded agent inside node namespace `ns`; on drop stopped (SIGTERM by PID) and
/// cleaned with `rkube agent clean` (pods, mounts, containerd).
pub(crate) struct Node {
    pub(crate) child: Option<Child>,
    pub(crate) ns: String,
    pub(crate) ip: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) args: Vec<String>,
}

impl Node {
    /// Starts node `i` in `ns`; `extra` adds to the flags every test node gets.
    pub(crate) fn start(ns: &str, i: u8, extra: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut n = Node { child: None, ns: ns.to_owned(), ip: node_ip(i), dir, args: Vec::new() };
        let d = n.dir.path().display().to_string();
        let fixed = [
            "server",
            "--node-name",
            &format!("n{i}"),
            "--node-ip",
            &n.ip,
            "--data-dir",
            &d,
            "--flannel-subnet-env",
            &format!("{d}/run/flannel/subnet.env"),
            "--flannel-docker-opts",
            &format!("{d}/run/flannel/docker"),
            "--disable-proxy",
            "--disable-dns",
        ]
        .map(str::to_owned);
        n.args = fixed.into_iter().chain(extra.iter().map(|s| (*s).to_owned())).collect();
        n.spawn();
        n
    }

    pub(crate) fn spawn(&mut self) {
        let log = std::fs::File::create(self.log()).expect("log file");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = in_ns(&self.ns, &[env!("CARGO_BIN_EXE_rkube")]);
        cmd.args(&args).env("RUST_LOG", "info").stderr(log);
        self.child = Some(crate::common::spawn_until_ready(&mut cmd, 90, &|| self.log_tail()));
    }

    /// Starts a server expected to refuse; returns its log once it exited (panics if it became ready).
    pub(crate) fn refused(ns: &str, i: u8, extra: &[&str]) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Node { child: None, ns: ns.to_owned(), ip: node_ip(i), dir, args: Vec::new() };
        let d = n.dir.path().display().to_string();
        let log = std::fs::File::create(n.log()).expect("log file");
        let child = in_ns(ns, &[env!("CARGO_BIN_EXE_rkube"), "server", "--node-name", &format!("n{i}")])
            .args(["--node-ip", &n.ip, "--data-dir", &d, "--disable-proxy", "--disable-dns"])
            .args(["--flannel-subnet-env", &format!("{d}/subnet.env"), "--flannel-docker-opts", &format!("{d}/docker")])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rkube server");
        // Generous: a refusal comes within seconds, but parallel builds on this 2-core machine slow every start.
        let status = wait_refused(child, &|| n.log_tail());
        assert!(!status.success(), "rkube server should have refused:\n{}", n.log_tail());
        let text = std::fs::read_to_string(n.log()).unwrap_or_default();
        drop(n);
        text
    }

    /// Stops the node and starts it again with `flag` set to `value`, expecting a refusal; returns the log.
    pub(crate) fn restart_refused(&mut self, flag: &str, value: &str) -> String {
        self.stop();
        let i = self.args.iter().position(|a| a == flag).expect("flag present") + 1;
        self.args[i] = value.to_owned();
        let log = std::fs::File::create(self.log()).expect("log file");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let child = in_ns(&self.ns, &[env!("CARGO_BIN_EXE_rkube")])
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rkube server");
        let status = wait_refused(child, &|| self.log_tail());
        assert!(!status.success(), "rkube server should have refused:\n{}", self.log_tail());
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
        in_ns(&self.ns, &[KUBECTL, "--kubeconfig"])
            .arg(self.path("kubeconfig.yaml"))
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .expect("run kubectl")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl json")
    }

    pub(crate) fn apply(&self, manifest: &str) {
        let mut c = in_ns(&self.ns, &[KUBECTL, "--kubeconfig"]);
        c.arg(self.path("kubeconfig.yaml")).args(["apply", "-f", "-"]).env("HOME", self.dir.path());
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("kubectl");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), manifest.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("kubectl apply");
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub(crate) fn import_busybox(&self) {
        let tar = rkube_cri::oci::busybox_image(IMAGE).expect("build the busybox image");
        let file = self.path("busybox.tar");
        std::fs::write(&file, tar).expect("write the image");
        let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["images", "import"])
            .arg(&file)
            .arg("--data-dir")
            .arg(self.dir.path())
            .output()
            .expect("rkube images import");
        assert!(out.status.success(), "rkube images import: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs an httpd pod answering `name` on :8080 (on this node) and returns its IP once Running.
    pub(crate) fn web_pod(&self, name: &str) -> String {
        let script = format!("mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www");
        self.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: \"{IMAGE}\"\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {script:?}]\n"
        ));
        let mut ip = String::new();
        poll(60, &format!("pod {name} running with an IP"), || {
            let p = self.json(&["get", "pod", name]);
            ip = p["status"]["podIP"].as_str().unwrap_or_default().to_owned();
            p["status"]["phase"] == "Running" && !ip.is_empty()
        });
        ip
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        let out = in_ns(&self.ns, &[env!("CARGO_BIN_EXE_rkube"), "agent", "clean", "--data-dir"])
            .arg(self.dir.path())
            .output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!("rkube agent clean failed:\n{}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// `curl` from the namespace `ns`: the body, or None.
pub(crate) fn http_get(ns: &str, ip: &str) -> Option<String> {
    let out = in_ns(ns, &["curl", "-s", "-m", "3", "--noproxy", "*", &format!("http://{ip}:8080/")]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Polls until `ip` answers `want` from namespace `ns`; on timeout panics with the namespace's addresses,
/// routes and rules and the node's log.
pub(crate) fn reach(n: &Node, ns: &str, ip: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(ns, ip).as_deref() != Some(want) {
        if Instant::now() > deadline {
            let ipt = in_ns(ns, &["iptables-save"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            let wget = in_ns(ns, &["curl", "-sS", "-m", "3", "--noproxy", "*", &format!("http://{ip}:8080/")])
                .output()
                .map(|o| {
                    format!(
                        "{} {:?} {:?}",
                        o.status,
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                });
            let logs = n.kubectl(&["logs", "web"]);
            let pod = n.kubectl(&["get", "pod", "-o", "yaml"]);
            panic!(
                "{ip} did not answer {want:?} from {ns}:\ncurl: {wget:?}\nlogs: {}{}\npods: {}\n{}\n{}\n{}\n{}\n{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr),
                String::from_utf8_lossy(&pod.stdout),
                sh(&["ip", "-n", ns, "-4", "addr"]),
                sh(&["ip", "-n", ns, "route"]),
                sh(&["ip", "-n", ns, "-o", "link"]),
                ipt.unwrap_or_default(),
                n.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn link(ns: &str, name: &str) -> serde_json::Value {
    let text = sh(&["ip", "-n", ns, "-d", "-j", "link", "show", name]);
    serde_json::from_str::<serde_json::Value>(&text).expect("ip -j")[0].clone()
}

pub(crate) fn inside(ip: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').expect("cidr");
    let (ip, net): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (ip.parse().expect("ip"), net.parse().expect("net"));
    let mask = u32::MAX << (32 - len.parse::<u32>().expect("len"));
    u32::from(ip) & mask == u32::from(net)
}

/// The lease the node logged ("the node holds its pod subnet"), from subnet.env.
pub(crate) fn subnet_of(n: &Node) -> String {
    let env = std::fs::read_to_string(n.path("run/flannel/subnet.env")).expect("subnet.env");
    let s = env.lines().find_map(|l| l.strip_prefix("FLANNEL_SUBNET=")).expect("FLANNEL_SUBNET").to_owned();
    let (gw, len) = s.split_once('/').expect("cidr");
    let gw: std::net::Ipv4Addr = gw.parse().expect("gateway");
    format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(gw) - 1))
}

/// Waits up to 90 s for a server expected to refuse to exit; kills it and panics with `log_tail()` otherwise.
fn wait_refused(mut child: Child, log_tail: &dyn Fn() -> String) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rkube server did not refuse within 90 s:\n{}", log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
