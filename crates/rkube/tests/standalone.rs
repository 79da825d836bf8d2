//! `rkube controller-manager` and `rkube scheduler`: the controllers and the scheduler as processes of their
//! own against a server started with `--disable-controller-manager --disable-scheduler` (k3s's flags), as
//! upstream runs kube-controller-manager and kube-scheduler. The server alone runs neither; the controller
//! manager then makes a Deployment's pods (with node IPAM from its own `--cluster-cidr`, the root-CA ConfigMap
//! and the `default` account in a new namespace), which stay unbound until the scheduler starts and places them
//! on simulated nodes. Their status ports answer `/healthz`, `/livez` and `/readyz` to anyone and `/metrics`
//! only to a client certificate from the cluster CA, with the leader-election gauge telling leader from
//! standby; a standby takes over when the leader stops. Bad flags, an unreadable kubeconfig and a taken port
//! are refused with what to do.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{Server, Sim, eventually, free_port, json, spawn_until_ready, stop_child};

/// A running `rkube controller-manager` or `rkube scheduler`, stopped by PID on drop (also when the test fails).
struct Component {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Its Lease and its name in `leader_election_master_status`.
    lease: &'static str,
}

impl Component {
    /// `rkube controller-manager` logging to `<name>.log`.
    fn controller_manager(s: &Server, name: &str, extra: &[&str]) -> Component {
        Component::start(s, "controller-manager", "kube-controller-manager", name, extra)
    }

    fn start(s: &Server, sub: &str, lease: &'static str, name: &str, extra: &[&str]) -> Component {
        let port = free_port();
        let log = s.dir.path().join(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args([sub, "--kubeconfig"])
            .arg(&s.kubeconfig)
            .args(["--secure-port", &port.to_string(), "--bind-address", "127.0.0.1"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log file"));
        let tail = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = spawn_until_ready(&mut cmd, 60, &tail);
        Component { child, port, log, lease }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Component {
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

/// `leader_election_master_status{name="<lease>"}` as the status port reports it.
fn leading(c: &Component, s: &Server) -> Option<String> {
    let (cert, key) = admin_cert(s);
    let (code, body) = curl(&c.url("/metrics"), Some((&cert, &key)));
    if code != "200" {
        return None;
    }
    let gauge = format!("leader_election_master_status{{name=\"{}\"}} ", c.lease);
    body.lines().find_map(|l| l.strip_prefix(gauge.as_str())).map(str::to_owned)
}

/// The status port's answers: health for anyone, metrics for the cluster CA's clients only, this process
/// leading.
fn check_status_port(c: &Component, s: &Server) {
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(curl(&c.url(path), None), ("200".to_owned(), "ok".to_owned()), "{path}\n{}", c.log());
    }
    assert_eq!(curl(&c.url("/metrics"), None).0, "401", "metrics without a client certificate");
    let (cert, key) = admin_cert(s);
    let (code, metrics) = curl(&c.url("/metrics"), Some((&cert, &key)));
    assert_eq!(code, "200", "{metrics}");
    let rss = metrics
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(rss > 1e6, "process_resident_memory_bytes {rss}\n{metrics}");
    assert_eq!(leading(c, s).as_deref(), Some("1"), "{metrics}");
}

/// Whether this process's host name starts the holder of Lease `kube-system/<lease>`.
fn holds(s: &Server, lease: &str) -> bool {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let holder = json(s, &["-n", "kube-system", "get", "lease", lease])["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Lowercased, as node names (and rkube's identities) are.
    holder.starts_with(&format!("{}_", host.trim().to_lowercase()))
}

fn pods(s: &Server) -> Vec<serde_json::Value> {
    json(s, &["-n", "cm", "get", "pods"])["items"].as_array().cloned().unwrap_or_default()
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
fn controllers_and_scheduler_run_in_processes_of_their_own() {
    let s = Server::start_with(&["--disable-controller-manager", "--disable-scheduler"]);
    s.ok("1.33", &["create", "namespace", "cm"]);
    let applied = s.kubectl_stdin("1.33", &["apply", "-f", "-"], DEPLOYMENT);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let _sim = Sim::start(&s, &["--count", "2"]);
    // Without them nothing acts on the Deployment and no one holds their leases (a negative check: the
    // controllers, were they running, would have acted within this time).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(json(&s, &["-n", "cm", "get", "replicasets"])["items"], serde_json::json!([]));
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let out = s.kubectl("1.33", &["-n", "kube-system", "get", "lease", lease]);
        assert!(!out.status.success(), "the server ran the {lease} despite being told not to");
    }

    let cm =
        Component::controller_manager(&s, "cm", &["--cluster-cidr", "10.77.0.0/16", "--node-cidr-mask-size", "26"]);
    eventually(&s, 60, "the controller manager to create the Deployment's 2 pods", || pods(&s).len() == 2);
    // Node IPAM runs there, with that process's flags.
    for node in ["sim-0", "sim-1"] {
        eventually(&s, 30, "a podCIDR for each node", || {
            let cidr = json(&s, &["get", "node", node])["spec"]["podCIDR"].as_str().unwrap_or_default().to_owned();
            cidr.starts_with("10.77.") && cidr.ends_with("/26")
        });
    }
    // The per-namespace controllers too: the account pods need and the cluster CA, taken from the kubeconfig.
    assert_eq!(json(&s, &["-n", "cm", "get", "serviceaccount", "default"])["metadata"]["name"], "default");
    let ca = std::fs::read_to_string(s.dir.path().join("server/tls/ca.crt")).expect("ca.crt");
    let published = json(&s, &["-n", "cm", "get", "configmap", "kube-root-ca.crt"]);
    assert_eq!(published["data"]["ca.crt"].as_str().map(str::trim), Some(ca.trim()));
    assert!(holds(&s, "kube-controller-manager"));
    check_status_port(&cm, &s);
    // Nobody binds them yet (negative check again).
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(pods(&s).iter().all(|p| p["spec"]["nodeName"].is_null()), "{:?}", pods(&s));

    let scheduler = Component::start(&s, "scheduler", "kube-scheduler", "scheduler", &[]);
    eventually(&s, 60, "the Deployment's 2 pods Running on simulated nodes", || {
        json(&s, &["-n", "cm", "get", "deployment", "web"])["status"]["readyReplicas"] == 2
    });
    assert!(pods(&s).iter().all(|p| p["spec"]["nodeName"].as_str().is_some_and(|n| n.starts_with("sim-"))));
    assert!(holds(&s, "kube-scheduler"));
    check_status_port(&scheduler, &s);
}

#[test]
fn a_standby_takes_over_when_the_leader_stops() {
    let s = Server::start_with(&["--disable-controller-manager"]);
    let mut first = Component::controller_manager(&s, "first", &[]);
    eventually(&s, 30, "the first controller manager to lead", || leading(&first, &s).as_deref() == Some("1"));
    let second = Component::controller_manager(&s, "second", &[]);
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
    for sub in ["controller-manager", "scheduler"] {
        let out = rkube(&[sub, "--kubeconfig", "/nonexistent/kubeconfig.yaml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("reading /nonexistent/kubeconfig.yaml"), "{sub}: {err}");
    }

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
        "40",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--cluster-cidr \"10.0.0.0/8x\" is not a CIDR"), "{err}");
    assert!(err.contains("--node-cidr-mask-size 40 must lie between"), "{err}");

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
