//! The kubelet's pod lifecycle end to end: a real `rkube server` with its embedded agent (its own containerd,
//! runc and CNI bridge), a busybox image built and imported by the test, real kubectl 1.33. Pods run with an
//! IP from the node's podCIDR; a container exiting 3 shows `Error` and restarts under CrashLoopBackOff; a
//! failing liveness probe restarts its container; deletion runs preStop within the grace period; a missing
//! image with `imagePullPolicy: Never` and an invalid command get upstream's statuses; a restarted server
//! adopts running containers without restarting them. Waits are polls with deadlines.

mod common;

use std::process::{Child, Command};

use common::{Server, eventually, json};
use serde_json::Value;

const V: &str = "1.33";
const IMAGE: &str = "busybox:kubelet-test";

fn pod_json(s: &Server, name: &str) -> Value {
    json(s, &["get", "pod", name])
}

fn container_status(pod: &Value) -> Value {
    pod["status"]["containerStatuses"][0].clone()
}

/// Events of an object as `reason: message` lines.
fn events(s: &Server, name: &str) -> Vec<String> {
    let list = json(s, &["get", "events", "--field-selector", &format!("involvedObject.name={name}")]);
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| format!("{}: {}", e["reason"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

fn has_event(s: &Server, name: &str, line: &str) -> bool {
    events(s, name).iter().any(|e| e == line)
}

fn wait_running(s: &Server, name: &str, secs: u64) -> Value {
    eventually(s, secs, &format!("pod {name} Running and Ready"), || {
        let p = pod_json(s, name);
        p["status"]["phase"] == "Running" && container_status(&p)["ready"] == true
    });
    pod_json(s, name)
}

/// Whether `ip` lies in the /24 `cidr` (the node IPAM hands out /24s).
fn in_cidr24(ip: &str, cidr: &str) -> bool {
    let net = cidr.split('/').next().unwrap_or("");
    let prefix = |a: &str| a.rsplit_once('.').map(|(p, _)| p.to_owned());
    cidr.ends_with("/24") && prefix(ip).is_some() && prefix(ip) == prefix(net)
}

fn apply(s: &Server, manifest: &str) {
    common::apply(s, manifest);
}

#[test]
fn pods_run_fail_and_restart_as_upstream_says() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    let node = s.node_name();

    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sleep", "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sh", "-c", "echo bye; exit 3"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: never-pull}}
spec:
  containers:
  - {{name: c, image: "example.invalid/nothere:1", imagePullPolicy: Never}}
---
apiVersion: v1
kind: Pod
metadata: {{name: pull-fails}}
spec:
  containers:
  - {{name: c, image: "127.0.0.1:1/nothere:1"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: says-done}}
spec:
  restartPolicy: Never
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sh", "-c", "printf done > /dev/termination-log"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: says-oops}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sh", "-c", "echo oops; exit 1"]
    terminationMessagePolicy: FallbackToLogsOnError
---
apiVersion: v1
kind: Pod
metadata: {{name: badcmd}}
spec:
  restartPolicy: Never
  containers:
  - {{name: c, image: "{IMAGE}", command: ["/no/such/program"]}}
"#
        ),
    );

    // Running, with an IP from the node's podCIDR and upstream's conditions and container status.
    let web = wait_running(&s, "web", 60);
    let cidr = json(&s, &["get", "node", &node])["spec"]["podCIDR"].as_str().unwrap_or("").to_owned();
    let ip = web["status"]["podIP"].as_str().unwrap_or("").to_owned();
    assert!(in_cidr24(&ip, &cidr), "pod IP {ip} not in the node's podCIDR {cidr}: {web:#}");
    assert_eq!(web["status"]["podIPs"][0]["ip"], ip.as_str());
    assert_eq!(web["status"]["qosClass"], "BestEffort");
    assert!(web["status"]["hostIP"].is_string() && web["status"]["startTime"].is_string(), "{web:#}");
    let conditions: Vec<(String, String)> = web["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| (c["type"].as_str().unwrap_or("").to_owned(), c["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    for t in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert!(conditions.contains(&(t.to_owned(), "True".to_owned())), "{t} not True: {conditions:?}");
    }
    let c = container_status(&web);
    assert!(c["containerID"].as_str().unwrap_or("").starts_with("containerd://"), "{c:#}");
    assert!(c["state"]["running"]["startedAt"].is_string(), "{c:#}");
    assert_eq!((c["restartCount"].as_i64(), c["started"].as_bool()), (Some(0), Some(true)));
    eventually(&s, 10, "events of web", || {
        has_event(&s, "web", &format!("Pulled: Container image \"{IMAGE}\" already present on machine"))
            && has_event(&s, "web", "Created: Created container: c")
            && has_event(&s, "web", "Started: Started container c")
    });

    // `imagePullPolicy: Never` without the image.
    eventually(&s, 30, "ErrImageNeverPull", || {
        let w = &container_status(&pod_json(&s, "never-pull"))["state"]["waiting"];
        w["reason"] == "ErrImageNeverPull"
            && w["message"] == "Container image \"example.invalid/nothere:1\" is not present with pull policy of Never"
    });
    assert!(has_event(
        &s,
        "never-pull",
        "ErrImageNeverPull: Container image \"example.invalid/nothere:1\" is not present with pull policy of Never"
    ));
    assert_eq!(pod_json(&s, "never-pull")["status"]["phase"], "Pending");

    // A pull that fails (nothing listens on 127.0.0.1:1): ErrImagePull with the runtime's message, then
    // ImagePullBackOff carrying it.
    eventually(&s, 30, "ImagePullBackOff", || {
        let w = &container_status(&pod_json(&s, "pull-fails"))["state"]["waiting"];
        w["reason"] == "ImagePullBackOff"
            && w["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Back-off pulling image \"127.0.0.1:1/nothere:1\": rpc error: ")
    });
    let pulls = events(&s, "pull-fails");
    for want in [
        "Pulling: Pulling image \"127.0.0.1:1/nothere:1\"",
        "Failed: Error: ErrImagePull",
        "Failed: Error: ImagePullBackOff",
    ] {
        assert!(pulls.iter().any(|e| e == want), "no {want:?} in {pulls:#?}");
    }
    assert!(pulls.iter().any(|e| e.starts_with("Failed: Failed to pull image \"127.0.0.1:1/nothere:1\": rpc error: ")));

    // An invalid command: StartError with runc's message; the pod fails (restartPolicy Never).
    eventually(&s, 30, "badcmd Failed with StartError", || {
        let p = pod_json(&s, "badcmd");
        let t = &container_status(&p)["state"]["terminated"];
        p["status"]["phase"] == "Failed" && t["reason"] == "StartError" && t["exitCode"] == 128
    });
    let t = container_status(&pod_json(&s, "badcmd"))["state"]["terminated"].clone();
    let msg = t["message"].as_str().unwrap_or("");
    assert!(msg.contains("/no/such/program") && msg.contains("no such file or directory"), "{t:#}");
    // Upstream converts the unset CRI start time to the epoch.
    assert_eq!(t["startedAt"], "1970-01-01T00:00:00Z");
    assert!(events(&s, "badcmd").iter().any(|e| e.starts_with("Failed: Error: ") && e.contains("/no/such/program")));

    // Termination messages: the termination-log file, or the log tail on error (FallbackToLogsOnError).
    eventually(&s, 30, "says-done Succeeded and says-oops Failed", || {
        pod_json(&s, "says-done")["status"]["phase"] == "Succeeded"
            && pod_json(&s, "says-oops")["status"]["phase"] == "Failed"
    });
    let done = container_status(&pod_json(&s, "says-done"))["state"]["terminated"].clone();
    assert_eq!(
        (done["reason"].as_str(), done["message"].as_str(), done["exitCode"].as_i64()),
        (Some("Completed"), Some("done"), Some(0))
    );
    let oops = pod_json(&s, "says-oops");
    let t = container_status(&oops)["state"]["terminated"].clone();
    assert_eq!(
        (t["reason"].as_str(), t["message"].as_str(), t["exitCode"].as_i64()),
        (Some("Error"), Some("oops\n"), Some(1))
    );
    let ready = oops["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).cloned();
    assert_eq!(
        ready.as_ref().map(|r| (r["status"].clone(), r["reason"].clone())),
        Some(("False".into(), "PodFailed".into()))
    );

    // Exit 3: Error, exit code 3, restarts under CrashLoopBackOff with upstream's message.
    let crash = json(&s, &["get", "pod", "crash"]);
    let uid = crash["metadata"]["uid"].as_str().unwrap_or("").to_owned();
    eventually(&s, 50, "crash restarting with back-off", || {
        let c = container_status(&pod_json(&s, "crash"));
        let last = &c["lastState"]["terminated"];
        c["restartCount"].as_i64().unwrap_or(0) >= 2
            && last["exitCode"] == 3
            && last["reason"] == "Error"
            && c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let c = container_status(&pod_json(&s, "crash"));
    let message = c["state"]["waiting"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("back-off ")
            && message.ends_with(&format!(" restarting failed container=c pod=crash_default({uid})")),
        "{c:#}"
    );
    assert!(has_event(
        &s,
        "crash",
        &format!("BackOff: Back-off restarting failed container c in pod crash_default({uid})")
    ));
    assert_eq!(pod_json(&s, "crash")["status"]["phase"], "Running");

    // `--previous` reads the instance in lastState.terminated (upstream's validateContainerLogStatus).
    let logs = s.ok(V, &["logs", "crash", "--previous"]);
    assert_eq!(logs, "bye\n");
    assert!(!rkube_cri::podcgroups::dirs(&uid).is_empty(), "a running pod has its pod-level cgroups");

    s.ok(
        V,
        &[
            "delete",
            "pod",
            "web",
            "crash",
            "never-pull",
            "pull-fails",
            "badcmd",
            "says-done",
            "says-oops",
            "--wait=true",
        ],
    );
    assert_runtime_empty(&s);
    // The pod-level cgroups (runc removes only the containers') go with the pod, in every hierarchy.
    eventually(&s, 20, "the deleted pod's cgroups removed", || rkube_cri::podcgroups::dirs(&uid).is_empty());
}

/// Every container and sandbox of deleted pods is gone from the runtime (`ctr` lists both).
fn assert_runtime_empty(s: &Server) {
    let sock = s.containerd_socket();
    eventually(s, 20, "no containers left in the runtime", || {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["-n", "k8s.io", "containers", "ls", "-q"])
            .output()
            .expect("run ctr");
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
}

#[test]
fn liveness_failures_restart_and_deletion_runs_pre_stop() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    let shared = tempfile::tempdir().expect("tempdir");
    let host_dir = shared.path().display().to_string();
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: unhealthy}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {{command: ["cat", "/tmp/healthy"]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: stopper}}
spec:
  terminationGracePeriodSeconds: 20
  volumes:
  - {{name: data, hostPath: {{path: "{host_dir}"}}}}
  containers:
  - name: c
    image: "{IMAGE}"
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts: [{{name: data, mountPath: /data}}]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo stopping > /data/prestop"]}}
"#
        ),
    );
    // A volume naming a missing ConfigMap: FailedMount, the pod waits in ContainerCreating, then starts.
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: needs-cm}}
spec:
  terminationGracePeriodSeconds: 2
  volumes: [{{name: cfg, configMap: {{name: later}}}}]
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sleep", "3600"], volumeMounts: [{{name: cfg, mountPath: /cfg}}]}}
"#
        ),
    );
    eventually(&s, 30, "FailedMount for the missing ConfigMap", || {
        events(&s, "needs-cm")
            .iter()
            .any(|e| e.starts_with("FailedMount: ") && e.contains("configmap \"later\" not found"))
    });
    let waiting = container_status(&pod_json(&s, "needs-cm"))["state"]["waiting"]["reason"].clone();
    assert_eq!(waiting, "ContainerCreating");
    s.ok(V, &["create", "configmap", "later", "--from-literal=k=v"]);
    wait_running(&s, "needs-cm", 30);

    // Init containers run to completion first; their status says so.
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: init}}
spec:
  terminationGracePeriodSeconds: 2
  volumes: [{{name: work, emptyDir: {{}}}}]
  initContainers:
  - {{name: prepare, image: "{IMAGE}", command: ["sh", "-c", "echo prepared > /work/x"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sh", "-c", "cat /work/x; sleep 3600"], volumeMounts: [{{name: work, mountPath: /work}}]}}
"#
        ),
    );
    let init = wait_running(&s, "init", 60);
    let i = &init["status"]["initContainerStatuses"][0];
    assert_eq!(
        (i["state"]["terminated"]["reason"].as_str(), i["ready"].as_bool()),
        (Some("Completed"), Some(true)),
        "{i:#}"
    );
    eventually(&s, 10, "the main container saw the init container's file", || {
        s.kubectl(V, &["logs", "init"]).stdout == b"prepared\n"
    });

    // A changed image (the container's spec hash) restarts the container; init containers do not rerun.
    s.import_busybox("busybox:kubelet-test-2");
    s.ok(V, &["set", "image", "pod/init", "c=busybox:kubelet-test-2"]);
    eventually(&s, 30, "the container restarted with the new image", || {
        let c = container_status(&pod_json(&s, "init"));
        c["restartCount"] == 1 && c["ready"] == true
    });
    // (Both tags name one image, so the status shows its first tag, as containerd reports it.)
    assert!(has_event(&s, "init", "Pulled: Container image \"busybox:kubelet-test-2\" already present on machine"));
    assert!(has_event(&s, "init", "Killing: Container c definition changed, will be restarted"));
    let i = &pod_json(&s, "init")["status"]["initContainerStatuses"][0];
    assert_eq!(i["restartCount"], 0, "{i:#}");

    eventually(&s, 60, "liveness restarts the container", || {
        container_status(&pod_json(&s, "unhealthy"))["restartCount"].as_i64().unwrap_or(0) >= 1
    });
    assert!(
        has_event(&s, "unhealthy", "Killing: Container c failed liveness probe, will be restarted"),
        "{:?}",
        events(&s, "unhealthy")
    );

    let stopper = wait_running(&s, "stopper", 60);
    assert_eq!(container_status(&stopper)["restartCount"], 0);
    // The container stops on SIGTERM after its hook, well inside its grace period: kubectl's wait must not
    // run out (a kubelet that sat out the whole grace period would make it fail).
    s.ok(V, &["delete", "pod", "stopper", "--wait=true", "--timeout=20s"]);
    let written = std::fs::read_to_string(shared.path().join("prestop")).unwrap_or_default();
    assert_eq!(written, "stopping\n", "the preStop hook did not run");
    assert!(has_event(&s, "stopper", "Killing: Stopping container c"));
    s.ok(V, &["delete", "pod", "unhealthy", "needs-cm", "init", "--wait=true"]);
    assert_runtime_empty(&s);
}

/// A second `rkube server` on the same data dir as `s` (same ports, node, bridge and subnet), stopped when
/// dropped (before `s`, which then cleans the node up).
struct Restarted {
    child: Child,
}

impl Restarted {
    fn start(s: &Server) -> Restarted {
        let subnet = s.pod_subnet();
        let gateway =
            format!("{}.1", subnet.split('/').next().and_then(|n| n.rsplit_once('.')).map(|(p, _)| p).unwrap_or(""));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args(["server", "--node-name", &s.node_name(), "--bind-address", "0.0.0.0", "--tls-san", &gateway])
            .arg("--data-dir")
            .arg(s.dir.path())
            .args(["--https-listen-port", &s.port.to_string()])
            .args(["--kubelet-port", &s.kubelet_port().to_string(), "--cni-bridge", &s.bridge()])
            .args(common::HOST_NODE_ARGS)
            .args(["--cluster-cidr", &subnet, "--node-cidr-mask-size", "24"])
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(s.dir.path().join("server-2.log")).expect("log file"));
        let log = s.dir.path().join("server-2.log");
        let child = common::spawn_until_ready(&mut cmd, 90, &|| std::fs::read_to_string(&log).unwrap_or_default());
        Restarted { child }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
    }
}

#[test]
fn a_restarted_server_adopts_running_containers() {
    let mut s = Server::start_with_agent(&[]);
    s.import_busybox(IMAGE);
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: keep}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sleep", "3600"]}}
"#
        ),
    );
    let before = container_status(&wait_running(&s, "keep", 60));
    s.stop();
    let _restarted = Restarted::start(&s);
    // A new pod running proves the restarted kubelet synced; the old one must not have been touched.
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: after}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {{name: c, image: "{IMAGE}", command: ["sleep", "3600"]}}
"#
        ),
    );
    wait_running(&s, "after", 60);
    let keep = pod_json(&s, "keep");
    let now = container_status(&keep);
    assert_eq!(keep["status"]["phase"], "Running");
    assert_eq!(now["containerID"], before["containerID"], "{now:#}");
    assert_eq!(now["restartCount"], before["restartCount"]);
    assert_eq!(now["state"]["running"]["startedAt"], before["state"]["running"]["startedAt"]);
    assert_eq!(now["ready"], true);
    s.ok(V, &["delete", "pod", "keep", "after", "--wait=true"]);
}
