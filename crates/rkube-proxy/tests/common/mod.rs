//! The network-namespace lab shared by the proxy's root tests: a "node" netns and a "pod" netns joined by
//! a veth (172.30.9.1 ↔ 172.30.9.2), an HTTP server in the pod, connections from the node. Everything is
//! removed on drop; the host namespace is never touched.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_proxy::Exec;

/// Network namespaces and processes of one test, removed on drop even when the test fails.
pub struct Lab {
    pub node: String,
    pub pod: String,
    server: Option<Child>,
}

pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let id = format!("{}-{}", tag, std::process::id());
        let lab = Lab { node: format!("rkp-n-{id}"), pod: format!("rkp-p-{id}"), server: None };
        sh(&["ip", "netns", "add", &lab.node]);
        sh(&["ip", "netns", "add", &lab.pod]);
        // The veth is created inside the node netns with its peer moved straight into the pod netns.
        sh(&["ip", "-n", &lab.node, "link", "add", "vn", "type", "veth", "peer", "name", "vp", "netns", &lab.pod]);
        for (ns, dev, addr) in [(&lab.node, "vn", "172.30.9.1/24"), (&lab.pod, "vp", "172.30.9.2/24")] {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // Cluster IPs are routed at the pod link, as a node's service CIDR would be.
        sh(&["ip", "-n", &lab.node, "route", "add", "10.254.0.0/16", "dev", "vn"]);
        sh(&["ip", "-n", &lab.pod, "route", "add", "default", "via", "172.30.9.1"]);
        lab
    }

    pub fn exec(&self) -> Exec {
        Exec { prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.node.clone()] }
    }

    pub fn in_node(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.node];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// An HTTP server on 172.30.9.2:8080 in the pod netns (`ip netns exec` execs it: its PID is ours to kill).
    pub fn serve(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.pod, "python3", "-m", "http.server", "8080", "--bind", "172.30.9.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connect("172.30.9.2", 8080) != "ok" {
            assert!(Instant::now() < deadline, "pod server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Connects from the node netns: "ok" (HTTP answered), "refused", or another error name.
    pub fn connect(&self, ip: &str, port: u16) -> String {
        let script = format!(
            "import socket\ns=socket.socket()\ns.settimeout(3)\ntry:\n s.connect(('{ip}',{port}))\n s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n print('ok' if s.recv(12).startswith(b'HTTP/1.0 200') else 'bad')\nexcept ConnectionRefusedError:\n print('refused')\nexcept Exception as e:\n print(type(e).__name__)\n"
        );
        self.in_node(&["python3", "-c", &script]).trim().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.node, &self.pod] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
