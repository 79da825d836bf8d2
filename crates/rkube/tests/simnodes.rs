//! `rkube sim nodes` against a real `rkube server` and real kubectl 1.33: simulated nodes register Ready
//! with their labels, taints and capacity, renew their Leases until the process is killed, and act as the
//! kubelet of pods bound to them (Running and Ready with a pod IP, Succeeded or Failed for pods that run to
//! completion, removed when deleted). Waits are polls with deadlines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const V: &str = "1.33";

/// A running `rkube sim nodes`; killed by PID when dropped (also when a test fails).
struct Sim {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: std::path::PathBuf,
}

impl Sim {
    /// Starts `rkube sim nodes` against `s` with `args` and waits for "N simulated nodes ready".
    fn start(s: &Server, args: &[&str]) -> Sim {
        let stderr = s.dir.path().join(format!("sim-{}.log", common::free_port()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["sim", "nodes", "--kubeconfig"])
            .arg(&s.kubeconfig)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("sim log"))
            .spawn()
            .expect("start rkube sim nodes");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut sim = Sim { child, lines, seen: Vec::new(), stderr };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match sim.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.ends_with("simulated nodes ready");
                    sim.seen.push(line);
                    if ready {
                        return sim;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = sim.child.wait().expect("wait");
                    panic!("rkube sim nodes exited with {status} before ready:\n{}", sim.log());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            assert!(Instant::now() < deadline, "simulated nodes not ready after 60 s:\n{}", sim.log());
        }
    }

    fn log(&self) -> String {
        format!("stdout: {:?}\nstderr:\n{}", self.seen, std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// Kills the process (SIGKILL by PID) and waits for it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it holds, failing with `what` after `secs` seconds.
fn eventually(s: &Server, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}\nserver log:\n{}", s.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(V, &all)).expect("kubectl -o json")
}

fn renew_time(s: &Server, node: &str) -> String {
    s.ok(V, &["-n", "kube-node-lease", "get", "lease", node, "-o", "jsonpath={.spec.renewTime}"])
}

#[test]
fn nodes_register_ready_and_renew_leases_until_killed() {
    let s = Server::start();
    let mut sim = Sim::start(
        &s,
        &[
            "--count",
            "3",
            "--label",
            "zone=a",
            "--taint",
            "example.com/sim=yes:PreferNoSchedule",
            "--renew-interval",
            "1s",
        ],
    );
    assert!(sim.seen.iter().any(|l| l == "registered 3/3 nodes"), "progress printed: {:?}", sim.seen);

    let table = s.ok(V, &["get", "nodes"]);
    for n in ["sim-0", "sim-1", "sim-2"] {
        let line = table.lines().find(|l| l.starts_with(n)).unwrap_or_else(|| panic!("{n} in:\n{table}"));
        assert!(line.split_whitespace().nth(1) == Some("Ready"), "{n} Ready:\n{table}");
    }
    let nodes = json(&s, &["get", "nodes", "-l", "node.rkube.io/simulated=true"]);
    let items = nodes["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{nodes}");
    for node in items {
        let name = node["metadata"]["name"].as_str().expect("name");
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["zone"], "a");
        assert_eq!(node["spec"]["taints"][0]["key"], "example.com/sim");
        assert_eq!(node["spec"]["taints"][0]["effect"], "PreferNoSchedule");
        let status = &node["status"];
        assert_eq!(status["capacity"]["cpu"], "32");
        assert_eq!(status["capacity"]["memory"], "256Gi");
        assert_eq!(status["capacity"]["pods"], "110");
        assert_eq!(status["allocatable"], status["capacity"]);
        assert_eq!(status["nodeInfo"]["containerRuntimeVersion"], "sim://0");
        assert!(status["nodeInfo"]["kubeletVersion"].as_str().is_some_and(|v| v.starts_with('v')), "{status}");
        assert!(status["addresses"][0]["address"].as_str().is_some_and(|a| a.starts_with("10.200.")));
        let conds = status["conditions"].as_array().expect("conditions");
        let ready = conds.iter().find(|c| c["type"] == "Ready").expect("Ready condition");
        assert_eq!((&ready["status"], &ready["reason"]), (&Value::from("True"), &Value::from("KubeletReady")));
        for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert!(conds.iter().any(|c| c["type"] == t && c["status"] == "False"), "{t} False: {status}");
        }
    }

    for n in ["sim-0", "sim-1", "sim-2"] {
        let lease = json(&s, &["-n", "kube-node-lease", "get", "lease", n]);
        assert_eq!(lease["spec"]["holderIdentity"], n);
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    }
    let first = renew_time(&s, "sim-2");
    eventually(&s, 15, "the lease of sim-2 renewed", || renew_time(&s, "sim-2") != first);

    sim.kill();
    std::thread::sleep(Duration::from_millis(500));
    let last = renew_time(&s, "sim-2");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(renew_time(&s, "sim-2"), last, "no renewals once the process is gone");
    assert_eq!(
        json(&s, &["get", "nodes", "-l", "node.rkube.io/simulated=true"])["items"].as_array().map(Vec::len),
        Some(3)
    );
}

fn create_pod(s: &Server, name: &str, restart: &str, annotations: &str) {
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","annotations":{{{annotations}}}}},
           "spec":{{"nodeName":"sim-1","restartPolicy":"{restart}",
                    "containers":[{{"name":"app","image":"nginx:1.25",
                                    "resources":{{"limits":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}}"#
    );
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], &manifest);
    assert!(out.status.success(), "create {name}: {}", String::from_utf8_lossy(&out.stderr));
}

fn phase(s: &Server, name: &str) -> String {
    s.ok(V, &["get", "pod", name, "-o", "jsonpath={.status.phase}"])
}

#[test]
fn pods_bound_to_simulated_nodes_run_finish_and_are_deleted() {
    let s = Server::start();
    let _sim = Sim::start(&s, &["--count", "3"]);

    create_pod(&s, "web", "Always", "");
    s.ok(V, &["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    let pod = json(&s, &["get", "pod", "web"]);
    let status = &pod["status"];
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["hostIP"], "10.200.0.2", "sim-1's address");
    let ip = status["podIP"].as_str().expect("a pod IP");
    assert!(!ip.is_empty() && ip != "10.200.0.2", "{status}");
    assert_eq!(status["podIPs"][0]["ip"], ip);
    assert_eq!(status["qosClass"], "Guaranteed");
    let c = &status["containerStatuses"][0];
    assert_eq!(
        (&c["name"], &c["ready"], &c["started"], &c["restartCount"]),
        (&"app".into(), &true.into(), &true.into(), &0.into())
    );
    assert!(c["containerID"].as_str().is_some_and(|id| id.starts_with("sim://")), "{c}");
    assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");
    for t in ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"] {
        let cond = status["conditions"].as_array().and_then(|cs| cs.iter().find(|x| x["type"] == t));
        assert!(cond.is_some_and(|x| x["status"] == "True" && x["lastTransitionTime"].is_string()), "{t}: {status}");
    }

    create_pod(&s, "ok-job", "Never", "");
    create_pod(&s, "bad-job", "Never", r#""sim.rkube.io/exit-code":"1""#);
    eventually(&s, 30, "ok-job Succeeded", || phase(&s, "ok-job") == "Succeeded");
    eventually(&s, 30, "bad-job Failed", || phase(&s, "bad-job") == "Failed");
    let bad = json(&s, &["get", "pod", "bad-job"]);
    let term = &bad["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!((&term["exitCode"], &term["reason"]), (&1.into(), &"Error".into()), "{bad}");
    let ready = bad["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|x| x["type"] == "Ready").cloned());
    assert_eq!(ready.map(|r| (r["status"].clone(), r["reason"].clone())), Some(("False".into(), "PodFailed".into())));
    let ok = json(&s, &["get", "pod", "ok-job"]);
    assert_eq!(ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");

    // More CPU than the node has: the node does not admit it (a scheduler bug would show this way).
    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"huge"},
        "spec":{"nodeName":"sim-1","containers":[{"name":"app","image":"nginx","resources":{"requests":{"cpu":"64"}}}]}}"#;
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], manifest);
    assert!(out.status.success(), "create huge: {}", String::from_utf8_lossy(&out.stderr));
    eventually(&s, 30, "huge Failed", || phase(&s, "huge") == "Failed");
    let huge = json(&s, &["get", "pod", "huge"]);
    assert_eq!(huge["status"]["reason"], "OutOfcpu", "{huge}");
    let message = huge["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Pod was rejected: Node didn't have enough resource: cpu, requested: 64000"),
        "{message}"
    );

    s.ok(V, &["delete", "pod", "web", "--timeout=15s"]);
    let out = s.kubectl(V, &["get", "pod", "web"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"), "web is gone");
}

const READY_PATH: &str = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}";

fn ready_status(s: &Server, node: &str) -> String {
    s.ok(V, &["get", "node", node, "-o", READY_PATH])
}

#[test]
fn conditions_changed_by_others_are_put_right_and_a_restart_takes_the_nodes_over() {
    let s = Server::start();
    let args = ["--count", "2", "--renew-interval", "1s"];
    let mut sim = Sim::start(&s, &args);
    create_pod(&s, "web", "Always", "");
    s.ok(V, &["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    let before = json(&s, &["get", "pod", "web"]);

    // What the node lifecycle controller writes when the Lease runs out.
    let unknown = r#"{"status":{"conditions":[{"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown",
        "message":"Kubelet stopped posting node status."}]}}"#;
    // The patch's answer shows the write took; a later read may already see the simulator's correction.
    let written = s.ok(
        V,
        &["patch", "node", "sim-0", "--subresource=status", "--type=strategic", "-p", unknown, "-o", READY_PATH],
    );
    assert_eq!(written, "Unknown");
    eventually(&s, 15, "sim-0 Ready again", || ready_status(&s, "sim-0") == "True");

    sim.kill();
    s.ok(V, &["patch", "node", "sim-1", "--subresource=status", "--type=strategic", "-p", unknown]);
    let stale = renew_time(&s, "sim-1");
    let _sim = Sim::start(&s, &args);
    assert_eq!(ready_status(&s, "sim-1"), "True", "registration writes the status of a node taken over");
    eventually(&s, 15, "the lease of sim-1 renewed", || renew_time(&s, "sim-1") != stale);
    let nodes = json(&s, &["get", "nodes", "-l", "node.rkube.io/simulated=true"]);
    assert_eq!(nodes["items"].as_array().map(Vec::len), Some(2), "no duplicates: {nodes}");

    // The pod keeps running as it was: same address, same start.
    let after = json(&s, &["get", "pod", "web"]);
    assert_eq!(after["status"]["phase"], "Running");
    assert_eq!(after["status"]["podIP"], before["status"]["podIP"]);
    assert_eq!(after["status"]["startTime"], before["status"]["startTime"]);
    assert_eq!(
        after["status"]["containerStatuses"][0]["state"]["running"]["startedAt"],
        before["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    );
    // A new pod on the same node gets another address.
    create_pod(&s, "web2", "Always", "");
    s.ok(V, &["wait", "--for=condition=Ready", "pod/web2", "--timeout=30s"]);
    let ip2 = s.ok(V, &["get", "pod", "web2", "-o", "jsonpath={.status.podIP}"]);
    assert!(!ip2.is_empty() && ip2 != before["status"]["podIP"], "{ip2} differs from {}", before["status"]["podIP"]);
}

#[test]
fn bad_flags_are_reported() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["sim", "nodes", "--kubeconfig", "/nonexistent"])
            .args(args)
            .output()
            .expect("run rkube");
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--count", "0"]);
    assert!(e.contains("--count"), "{e}");
    let e = run(&["--count", "1", "--taint", "dedicated=gpu"]);
    assert!(e.contains("effect is missing"), "{e}");
    let e = run(&["--count", "1", "--taint", "dedicated=gpu:Never"]);
    assert!(e.contains("unknown effect"), "{e}");
    let e = run(&["--count", "1", "--label", "novalue"]);
    assert!(e.contains("not key=value"), "{e}");
    let e = run(&["--count", "1", "--cpu", "lots"]);
    assert!(e.contains("cpu \"lots\""), "{e}");
    let e = run(&["--count", "1"]);
    assert!(e.contains("/nonexistent"), "{e}");
}
