//! `rkube controller-manager`: the controllers as a process of their own against a server started with
//! `--disable-controller-manager` (k3s's flag), as upstream runs kube-controller-manager. The server alone
//! runs no controller; the separate process does all of it (a Deployment becomes Running pods on simulated
//! nodes, with node IPAM from its own `--cluster-cidr`, the root-CA ConfigMap and the `default` account in a
//! new namespace); its status port answers `/healthz`, `/livez` and `/readyz` to anyone and `/metrics` only to
//! a client certificate from the cluster CA, with the leader-election gauge telling leader from standby, and
//! a standby takes over when the leader stops. Bad flags, an unreadable kubeconfig and a taken port are
//! refused with what to do.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{Server, Sim, eventually, free_port, json, spawn_until_ready, stop_child};

/// A running `rkube controller-manager`, stopped by PID on drop (also when the test fails).
struct ControllerManager {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ControllerManager {
    fn start(s: &Server, name: &str, extra: &[&str]) -> ControllerManager {
        let port = free_port();
        let log = s.dir.path().join(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args(["controller-manager", "--kubeconfig"])
            .arg(&s.kubeconfig)
            .args(["--secure-port", &port.to_string(), "--bind-address", "127.0.0.1"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log file"));
        let tail = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = spawn_until_ready(&mut cmd, 60, &tail);
        ControllerManager { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// `curl` against the status port: the HTTP code and the body. `cert` is a client certificate and key.
fn curl(url: &str, cert: Option<(&Path, &Path)>) -> (String, String) {
    let mut cmd = Command::new("curl");
    // -k: the status port's certificate is self-signed, as upstream's is without --tls-cert-file.
    cmd.args(["-sk", "--max-time", "10", "-w", "\n%{http_code}", url]);
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_owned(), body.to_owned())
}

fn admin_cert(s: &Server) -> (PathBuf, PathBuf) {
    let tls = s.dir.path().join("server/tls");
    (tls.join("client-admin.crt"), tls.join("client-admin.key"))
}

/// `leader_election_master_status{name="kube-controller-manager"}` as the status port reports it.
fn leading(cm: &ControllerManager, s: &Server) -> Option<String> {
    let (c, k) = admin_cert(s);
    let (code, body) = curl(&cm.url("/metrics"), Some((&c, &k)));
    if code != "200" {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix("leader_election_master_status{name=\"kube-controller-manager\"} "))
        .map(str::to_owned)
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: cm}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: registry.k8s.io/pause:3.10}]
"#;

#[test]
fn controllers_run_in_a_process_of_their_own() {
    let s = Server::start_with(&["--disable-controller-manager"]);
    s.ok("1.33", &["create", "namespace", "cm"]);
    let applied = s.kubectl_stdin("1.33", &["apply", "-f", "-"], DEPLOYMENT);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let _sim = Sim::start(&s, &["--count", "2"]);
    // Without a controller manager nothing acts on the Deployment and no one holds the controllers' lease
    // (a negative check: the controllers, were they running, would have acted within this time).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(json(&s, &["-n", "cm", "get", "replicasets"])["items"], serde_json::json!([]));
    let lease = s.kubectl("1.33", &["-n", "kube-system", "get", "lease", "kube-controller-manager"]);
    assert!(!lease.status.success(), "the server ran controllers despite --disable-controller-manager");

    let cm = ControllerManager::start(&s, "cm", &["--cluster-cidr", "10.77.0.0/16", "--node-cidr-mask-size", "26"]);
    eventually(&s, 60, "the Deployment's 2 pods Running on simulated nodes", || {
        json(&s, &["-n", "cm", "get", "deployment", "web"])["status"]["readyReplicas"] == 2
    });
    // Node IPAM runs there, with that process's flags.
    for node in ["sim-0", "sim-1"] {
        let cidr = json(&s, &["get", "node", node])["spec"]["podCIDR"].as_str().unwrap_or_default().to_owned();
        assert!(cidr.starts_with("10.77.") && cidr.ends_with("/26"), "{node}: podCIDR {cidr:?}");
    }
    // The per-namespace controllers too: the account pods need and the cluster CA, taken from the kubeconfig.
    assert_eq!(json(&s, &["-n", "cm", "get", "serviceaccount", "default"])["metadata"]["name"], "default");
    let ca = std::fs::read_to_string(s.dir.path().join("server/tls/ca.crt")).expect("ca.crt");
    let published = json(&s, &["-n", "cm", "get", "configmap", "kube-root-ca.crt"]);
    assert_eq!(published["data"]["ca.crt"].as_str().map(str::trim), Some(ca.trim()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let holder = json(&s, &["-n", "kube-system", "get", "lease", "kube-controller-manager"])["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(holder.starts_with(&format!("{}_", host.trim())), "lease holder {holder:?}");

    // The status port: health for anyone, metrics for the cluster CA's clients only.
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(curl(&cm.url(path), None), ("200".to_owned(), "ok".to_owned()), "{path}\n{}", cm.log());
    }
    assert_eq!(curl(&cm.url("/metrics"), None).0, "401", "metrics without a client certificate");
    let (c, k) = admin_cert(&s);
    let (code, metrics) = curl(&cm.url("/metrics"), Some((&c, &k)));
    assert_eq!(code, "200", "{metrics}");
    let rss = metrics
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(rss > 1e6, "process_resident_memory_bytes {rss}\n{metrics}");
    assert_eq!(leading(&cm, &s).as_deref(), Some("1"), "{metrics}");
}

#[test]
fn a_standby_takes_over_when_the_leader_stops() {
    let s = Server::start_with(&["--disable-controller-manager"]);
    let mut first = ControllerManager::start(&s, "first", &[]);
    eventually(&s, 30, "the first controller manager to lead", || leading(&first, &s).as_deref() == Some("1"));
    let second = ControllerManager::start(&s, "second", &[]);
    // Ready (it reached the API) while standing by: upstream's standby reports ready too.
    assert_eq!(curl(&second.url("/readyz"), None).0, "200");
    assert_eq!(leading(&second, &s).as_deref(), Some("0"), "{}", second.log());
    // A clean stop releases the lease; the standby takes it within its retry period, not a lease duration.
    stop_child(&mut first.child);
    eventually(&s, 10, "the standby to lead", || leading(&second, &s).as_deref() == Some("1"));
    s.ok("1.33", &["create", "namespace", "after"]);
    eventually(&s, 30, "the new leader's service-account controller", || {
        s.kubectl("1.33", &["-n", "after", "get", "serviceaccount", "default"]).status.success()
    });
}

fn rkube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkube")).args(args).stdin(Stdio::null()).output().expect("run rkube")
}

#[test]
fn bad_flags_are_refused_with_what_to_do() {
    let out = rkube(&["controller-manager", "--kubeconfig", "/nonexistent/kubeconfig.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/kubeconfig.yaml"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc.yaml");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters: []\n").expect("write");
    let out = rkube(&[
        "controller-manager",
        "--kubeconfig",
        kc.to_str().unwrap_or_default(),
        "--cluster-cidr",
        "10.0.0.0/8x",
        "--node-cidr-mask-size",
        "4",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--cluster-cidr \"10.0.0.0/8x\" is not a CIDR"), "{err}");
    assert!(err.contains("--node-cidr-mask-size 4 must lie between"), "{err}");

    // A status port someone else holds: refused before any controller starts.
    let s = Server::start_with(&["--disable-controller-manager"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = rkube(&[
        "controller-manager",
        "--kubeconfig",
        s.kubeconfig.to_str().unwrap_or_default(),
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        &port,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--secure-port") && err.contains(&format!("127.0.0.1:{port}")), "{err}");
    let lease = s.kubectl("1.33", &["-n", "kube-system", "get", "lease", "kube-controller-manager"]);
    assert!(!lease.status.success(), "a refused controller manager took the lease");
}
