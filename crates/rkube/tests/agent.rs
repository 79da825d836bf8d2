//! End-to-end tests of the node agent inside `rkube server`: its own containerd, node registration and
//! health, the CNI bridge, `rkube images` and `rkube agent clean`, with real containerd, runc and CNI plugins.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::{Server, eventually, json};
use serde_json::Value;

/// A quantity in bytes (`24684096Ki`, `256Mi`, `1000`), for the units the agent writes.
fn bytes(q: &str) -> u64 {
    let units = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40)];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().expect("a number") * factor;
        }
    }
    q.parse().expect("a plain number of bytes")
}

/// CPU in millicores (`2`, `1800m`).
fn millicores(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().expect("millicores"),
        None => q.parse::<u64>().expect("cores") * 1000,
    }
}

fn condition<'a>(node: &'a Value, type_: &str) -> &'a Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {}", node["status"]))
}

#[test]
fn node_registers_ready_with_capacity_labels_info_and_lease() {
    let s = Server::start_with_agent(&[
        "--node-label",
        "rkube.test/role=e2e",
        "--kube-reserved",
        "cpu=200m,memory=300Mi",
        "--system-reserved",
        "cpu=100m,memory=256Mi",
    ]);
    let name = s.node_name();
    let node = json(&s, &["get", "node", &name]);
    let ready = condition(&node, "Ready");
    assert_eq!(ready["status"], "True", "{ready}");
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");
    for (type_, reason) in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ] {
        let c = condition(&node, type_);
        assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some(reason)), "{c}");
    }

    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], name.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["beta.kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/arch"], labels["beta.kubernetes.io/arch"]);
    assert_eq!(labels["rkube.test/role"], "e2e");

    let status = &node["status"];
    let addresses = status["addresses"].as_array().expect("addresses");
    assert_eq!(addresses[0]["type"], "InternalIP");
    assert!(addresses[0]["address"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok(), "{addresses:?}");
    assert_eq!(
        (addresses[1]["type"].as_str(), addresses[1]["address"].as_str()),
        (Some("Hostname"), Some(name.as_str()))
    );
    assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], s.kubelet_port());

    // Allocatable = capacity − kube-reserved − system-reserved (− 100Mi memory eviction threshold).
    let (cap, alloc) = (&status["capacity"], &status["allocatable"]);
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(millicores(cap["cpu"].as_str().unwrap()), cores * 1000);
    assert_eq!(millicores(alloc["cpu"].as_str().unwrap()), cores * 1000 - 300);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(bytes(cap["memory"].as_str().unwrap()), total_kib * 1024);
    let huge: u64 = cap
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("hugepages-"))
        .map(|(_, v)| bytes(v.as_str().unwrap()))
        .sum();
    assert_eq!(bytes(alloc["memory"].as_str().unwrap()), total_kib * 1024 - ((300 + 256 + 100) << 20) - huge);
    assert_eq!((cap["pods"].as_str(), alloc["pods"].as_str()), (Some("110"), Some("110")));
    assert!(bytes(alloc["ephemeral-storage"].as_str().unwrap()) < bytes(cap["ephemeral-storage"].as_str().unwrap()));

    let info = &status["nodeInfo"];
    let runtime_version = info["containerRuntimeVersion"].as_str().unwrap();
    assert!(runtime_version.starts_with("containerd://1."), "{info}");
    assert!(info["kubeletVersion"].as_str().unwrap().starts_with("v1.33."), "{info}");
    assert_eq!(info["operatingSystem"], "linux");
    assert!(!info["bootID"].as_str().unwrap().is_empty() && !info["kernelVersion"].as_str().unwrap().is_empty());
    assert!(!info["osImage"].as_str().unwrap().is_empty());
    let images = status["images"].as_array().expect("images");
    assert!(
        images.iter().any(|i| i["names"].as_array().unwrap().iter().any(|n| n == "rkube.io/pause:1.0")),
        "the pause image is listed: {images:?}"
    );
    let wide = s.ok("1.33", &["get", "node", &name, "-o", "wide"]);
    assert!(wide.contains("Ready") && wide.contains(runtime_version), "{wide}");

    // The heartbeat: a Lease held by the node, renewed every 10 s.
    let lease = json(&s, &["get", "lease", "-n", "kube-node-lease", &name]);
    assert_eq!(lease["spec"]["holderIdentity"], name.as_str());
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let first = lease["spec"]["renewTime"].clone();
    eventually(&s, 25, "the node lease is renewed", || {
        json(&s, &["get", "lease", "-n", "kube-node-lease", &name])["spec"]["renewTime"] != first
    });
    // An unchanged status is not posted again with every heartbeat (only every 5 minutes).
    let before = json(&s, &["get", "node", &name])["metadata"]["resourceVersion"].clone();
    let renewed = json(&s, &["get", "lease", "-n", "kube-node-lease", &name])["spec"]["renewTime"].clone();
    eventually(&s, 25, "the node lease is renewed again", || {
        json(&s, &["get", "lease", "-n", "kube-node-lease", &name])["spec"]["renewTime"] != renewed
    });
    assert_eq!(json(&s, &["get", "node", &name])["metadata"]["resourceVersion"], before, "the node was rewritten");
}

#[test]
fn busybox_pod_runs_with_an_ip_in_the_node_pod_cidr() {
    let s = Server::start_with_agent(&[]);
    s.import_busybox("rkube.test/busybox:1");
    let listed = String::from_utf8_lossy(&s.images(&["list"]).stdout).into_owned();
    assert!(listed.contains("rkube.test/busybox:1"), "{listed}");
    let node = json(&s, &["get", "node", &s.node_name()]);
    assert_eq!(node["spec"]["podCIDR"], s.pod_subnet().as_str());
    s.ok(
        "1.33",
        &[
            "run",
            "bb",
            "--image=rkube.test/busybox:1",
            "--image-pull-policy=Never",
            "--",
            "sh",
            "-c",
            "echo hello from bb; sleep 3600",
        ],
    );
    eventually(&s, 60, "pod bb is Running", || json(&s, &["get", "pod", "bb"])["status"]["phase"] == "Running");
    let pod = json(&s, &["get", "pod", "bb"]);
    let ip: Ipv4Addr = pod["status"]["podIP"].as_str().expect("a pod IP").parse().expect("IPv4");
    let subnet: Ipv4Addr = s.pod_subnet().trim_end_matches("/24").parse().unwrap();
    assert_eq!(ip.octets()[..3], subnet.octets()[..3], "pod IP {ip} outside {}", s.pod_subnet());
    assert_ne!(ip.octets()[3], 1, "the gateway address is the bridge's");
    // The API server reaches the agent API over TLS (its kubelet-client certificate against the node's
    // serving certificate from the same CA).
    eventually(&s, 20, "kubectl logs shows the pod's output", || {
        String::from_utf8_lossy(&s.kubectl("1.33", &["logs", "bb"]).stdout).contains("hello from bb")
    });
    assert!(
        std::path::Path::new("/sys/class/net").join(s.bridge()).exists(),
        "the pod is attached to bridge {}",
        s.bridge()
    );
}

/// `kubectl get node -w -o json`: the Ready condition of every version of the node it sees, one line each
/// ("<status> <reason> <message>"); killed by PID when dropped.
struct ReadyWatch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ReadyWatch {
    fn start(s: &Server, node: &str) -> ReadyWatch {
        let mut child = Command::new(common::kubectl_path("1.33").expect("kubectl 1.33"))
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .args(["get", "node", node, "-w", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl get -w");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for node in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>().map_while(Result::ok) {
                let c = condition(&node, "Ready");
                let line = format!(
                    "{} {} {}",
                    c["status"].as_str().unwrap_or_default(),
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                );
                sink.lock().unwrap().push(line);
            }
        });
        ReadyWatch { child, lines }
    }

    fn seen(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
    }
}

#[test]
fn killed_containerd_turns_the_node_not_ready_and_it_recovers() {
    let s = Server::start_with_agent(&[]);
    let name = s.node_name();
    let watch = ReadyWatch::start(&s, &name);
    eventually(&s, 10, "the watch shows the node Ready", || {
        watch.seen().iter().any(|l| l.starts_with("True KubeletReady"))
    });
    let pid = s.containerd_pid().expect("the agent's containerd runs");
    let killed = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    // Every status the agent posts passes through the watch, however short the outage.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !watch.seen().iter().any(|l| l == "False KubeletNotReady container runtime is down") {
        assert!(
            std::time::Instant::now() < deadline,
            "no NotReady status seen; the watch saw {:?}\n{}",
            watch.seen(),
            s.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eventually(&s, 40, "the node is Ready again once the supervisor restarted containerd", || {
        watch.seen().last().is_some_and(|l| l.starts_with("True KubeletReady"))
    });
    let again = s.containerd_pid().expect("containerd runs again");
    assert_ne!(again, pid, "a new containerd process");
    let node = json(&s, &["get", "node", &name]);
    assert_eq!(condition(&node, "Ready")["status"], "True");
}

#[test]
fn corrupt_image_archive_is_refused_and_nothing_is_imported() {
    let s = Server::start_with_agent(&[]);
    let list = || String::from_utf8_lossy(&s.images(&["list"]).stdout).into_owned();
    let before = list();
    assert!(before.starts_with("IMAGE") && before.contains("rkube.io/pause:1.0"), "{before}");
    let good = rkube_cri::oci::busybox_image("rkube.test/corrupt:1").expect("busybox image");
    let bad = s.dir.path().join("corrupt.tar");
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let out = s.images(&["import", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a truncated archive is refused");
    assert!(stderr.contains("corrupt.tar"), "the error names the file: {stderr}");
    assert_eq!(list(), before, "nothing was imported");
    // A missing file, likewise.
    let out = s.images(&["import", "/nonexistent/image.tar"]);
    assert!(!out.status.success());
    assert_eq!(list(), before);
}

/// Every `containerd-shim` process whose command line mentions `dir`.
fn shims_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?).replace('\0', " ");
            (cmdline.contains("containerd-shim") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn agent_clean_leaves_no_sandbox_mount_or_bridge() {
    let mut s = Server::start_with_agent(&[]);
    s.import_busybox("rkube.test/busybox:1");
    s.ok("1.33", &["run", "cl", "--image=rkube.test/busybox:1", "--image-pull-policy=Never", "--", "sleep", "3600"]);
    eventually(&s, 60, "pod cl is Running", || json(&s, &["get", "pod", "cl"])["status"]["phase"] == "Running");
    let dir = s.dir.path().to_path_buf();
    s.stop();
    // The stopped agent left its pod running, as a kubelet does.
    assert!(!shims_under(&dir).is_empty(), "the pod's shim outlives the agent");
    let out =
        Command::new(env!("CARGO_BIN_EXE_rkube")).args(["agent", "clean", "--data-dir"]).arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "agent clean: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("removed 1 pod sandbox"), "{stdout}");
    assert_eq!(shims_under(&dir), Vec::<u32>::new(), "no shim left");
    assert_eq!(mounts_under(&dir), Vec::<String>::new(), "no mount left");
    assert!(!std::path::Path::new("/sys/class/net").join(s.bridge()).exists(), "bridge {} deleted", s.bridge());
    assert_eq!(s.containerd_pid(), None, "no containerd left");
}

/// A containerd the test runs itself (not the agent's), as an existing runtime for `--container-runtime-endpoint`;
/// its pods are removed and it is stopped when dropped.
struct OwnContainerd {
    tokio: tokio::runtime::Runtime,
    supervisor: Option<rkube_cri::Supervisor>,
    dir: tempfile::TempDir,
}

impl OwnContainerd {
    fn start(systemd_cgroup: bool) -> OwnContainerd {
        let dir = tempfile::tempdir().unwrap();
        let tokio = tokio::runtime::Runtime::new().unwrap();
        let mut config = rkube_cri::ContainerdConfig::new(dir.path().join("containerd")).unwrap();
        config.systemd_cgroup = systemd_cgroup;
        config.cni_conf_dir = dir.path().join("net.d");
        let supervisor = tokio.block_on(rkube_cri::Supervisor::start(config)).expect("start a containerd");
        OwnContainerd { tokio, supervisor: Some(supervisor), dir }
    }

    fn socket(&self) -> String {
        self.supervisor.as_ref().unwrap().endpoint().display().to_string()
    }

    fn cni_conf_dir(&self) -> String {
        self.dir.path().join("net.d").display().to_string()
    }
}

impl Drop for OwnContainerd {
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            self.tokio.block_on(async {
                if let Ok(rt) = rkube_cri::Runtime::connect(&supervisor.endpoint()).await {
                    let _ = rkube_cri::remove_all_pods(&rt).await;
                }
                supervisor.stop().await;
            });
        }
    }
}

#[test]
fn an_existing_runtime_is_used_through_its_endpoint() {
    let own = OwnContainerd::start(false);
    let s = Server::start_with_agent(&[
        "--container-runtime-endpoint",
        &format!("unix://{}", own.socket()),
        "--cni-conf-dir",
        &own.cni_conf_dir(),
    ]);
    assert_eq!(s.containerd_pid(), None, "the agent started no containerd of its own");
    let node = json(&s, &["get", "node", &s.node_name()]);
    assert_eq!(condition(&node, "Ready")["status"], "True");
    let conflist = std::path::Path::new(&own.cni_conf_dir()).join("10-rkube.conflist");
    assert!(conflist.exists(), "the conflist is where that runtime reads it");
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["images", "list", "--container-runtime-endpoint", &own.socket()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("rkube.io/pause:1.0"), "the pause image went there");
}

#[test]
fn a_runtime_with_another_cgroup_driver_is_refused() {
    // This host runs without systemd (cgroupfs); a runtime set for systemd cgroups must be refused, naming both.
    assert!(!std::path::Path::new("/run/systemd/system").exists(), "this test expects a host without systemd");
    let own = OwnContainerd::start(true);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["server", "--node-name", "mismatch", "--bind-address", "127.0.0.1"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--https-listen-port", &common::free_port().to_string()])
        .args(["--kubelet-port", &common::free_port().to_string()])
        .args(common::HOST_NODE_ARGS)
        .args(["--container-runtime-endpoint", &own.socket(), "--cni-conf-dir", &own.cni_conf_dir()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server must not start: {stderr}");
    assert!(
        stderr.contains("kubelet cgroup driver: cgroupfs")
            && stderr.contains("container runtime's cgroup driver: systemd"),
        "{stderr}"
    );
    assert!(stderr.contains("SystemdCgroup"), "the error says how to fix it: {stderr}");
}

/// A remote `rkube agent` process with its own data dir; stopped (by PID) and cleaned up when dropped.
struct RemoteAgent {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for RemoteAgent {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
        let _ = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["agent", "clean", "--data-dir"])
            .arg(self.dir.path())
            .output();
    }
}

#[test]
fn a_remote_agent_joins_with_a_kubeconfig_and_certificates() {
    let (subnet, _lock) = common::reserve_subnet();
    let cidr = format!("{subnet}/24");
    let s = Server::start_with(&["--cluster-cidr", &cidr, "--node-cidr-mask-size", "24"]);
    let tls = s.dir.path().join("server/tls");
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let name = format!("remote-{port}");
    let log = dir.path().join("agent.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["agent", "--server", &s.url(), "--node-name", &name])
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        // The API server's own serving certificate stands in for the node's (it names this host's IP too).
        .arg("--tls-cert-file")
        .arg(tls.join("serving-kube-apiserver.crt"))
        .arg("--tls-private-key-file")
        .arg(tls.join("serving-kube-apiserver.key"))
        .arg("--client-ca-file")
        .arg(tls.join("ca.crt"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--kubelet-port", &port.to_string(), "--cni-bridge", &format!("rk{port}")])
        .args(common::HOST_NODE_ARGS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start rkube agent");
    let stdout = child.stdout.take().unwrap();
    let agent = RemoteAgent { child, dir };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("is ready") {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(std::time::Duration::from_secs(60));
    assert!(ready.is_ok(), "the agent did not get ready:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let node = json(&s, &["get", "node", &name]);
    assert_eq!(condition(&node, "Ready")["status"], "True");
    assert_eq!(node["spec"]["podCIDR"], cidr.as_str());
    let lease = json(&s, &["get", "lease", "-n", "kube-node-lease", &name]);
    assert_eq!(lease["spec"]["holderIdentity"], name.as_str());
    drop(agent);
}
