//! Highly available servers (issue 8): `rkube cluster up --servers 3 --etcd-members 3 --nodes 2` builds three
//! control-plane-only `rkube server`s on one etcd cluster of three members, and two agents failing over among
//! the servers. A Deployment keeps serving while a server (the leader) and then an etcd member are killed and
//! brought back; objects written before each kill are there after; a new leader schedules; `down` leaves no
//! trace. An agent joining with a fresh token (a new node on the cluster network, through all three servers)
//! gets Ready by approved CSRs and fails over too, and one joining while n1 is down goes through the next server;
//! an expired token is refused; a backup of the populated cluster restores into a new server with the same
//! objects. Everything runs inside the cluster's namespaces (the service is reached from an agent node's).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, TEST_CLUSTERS_DIR};

const IMAGE: &str = "rkube.io/test/busybox:ha";

/// A Deployment of `replicas` busybox httpd pods answering with `name`, and a Service on port 80 in front.
fn web(name: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: "{IMAGE}"
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /w && echo {name} > /w/index.html && exec httpd -f -p 8080 -h /w"]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

fn ready_replicas(c: &Cluster, name: &str) -> String {
    let out = c.kubectl_out(&["get", "deployment", name, "-o", "jsonpath={.status.readyReplicas}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The page the service `name` gives node `node` (its namespace), through the node's service proxy.
fn fetch(c: &Cluster, node: &str, ip: &str) -> String {
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80");
    let out = c.exec_out(node, &["busybox", "sh", "-c", &get]);
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

/// The holder of lease `kube-system/<lease>` (`<node>_<uuid>`).
fn holder(c: &Cluster, lease: &str) -> String {
    let out = c.kubectl_out(&["-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// How many times server `node`'s log says it became leader of `lease`.
fn became_leader(c: &Cluster, node: &str, lease: &str) -> usize {
    let log = std::fs::read_to_string(c.node_dir(node).join("node.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains("became leader") && l.contains(&format!("kube-system/{lease}"))).count()
}

/// Node `node`'s Lease renewTime.
fn renewed(c: &Cluster, node: &str) -> String {
    let out = c.kubectl_out(&["-n", "kube-node-lease", "get", "lease", node, "-o", "jsonpath={.spec.renewTime}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Creates ConfigMap `name` (data `v: <name>`); true once it exists (a create whose answer was lost in a
/// failover may have been stored: AlreadyExists then counts).
fn write(c: &Cluster, name: &str) -> bool {
    let out = c.kubectl_out(&["create", "configmap", name, &format!("--from-literal=v={name}")]);
    out.status.success() || String::from_utf8_lossy(&out.stderr).contains("already exists")
}

/// Every ConfigMap `names` is in the API with the value it was written with.
fn all_there(c: &Cluster, names: &[&str]) {
    for n in names {
        let v = c.kubectl(&["get", "configmap", n, "-o", "jsonpath={.data.v}"]);
        assert_eq!(v.trim(), *n, "configmap {n}");
    }
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                out.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn namespaces_of(name: &str) -> Vec<String> {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().expect("ip netns");
    let prefix = format!("rkc-{name}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n == prefix || n.starts_with(&format!("{prefix}-n")))
        .map(str::to_owned)
        .collect()
}

/// `rkube token create <extra>` through the cluster's admin kubeconfig; the join token.
fn token_create(c: &Cluster, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["token", "create", "--kubeconfig"])
        .arg(&c.kubeconfig)
        .args(extra)
        .output()
        .expect("rkube token create");
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `rkube agent --token <token>` against the three servers inside the cluster's own namespace (a new
/// machine on its network), expecting it to give up within 60 s; returns its stderr.
fn join_refused(c: &Cluster, token: &str) -> String {
    let dir = c.dir.join("refused-agent");
    let log = c.dir.join("refused-agent.log");
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/rkc-{}", c.name))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rkube"))
        .args(["agent", "--server", SERVERS, "--token", token, "--node-name", "refused", "--node-ip", "192.168.77.1"])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--ignore-preflight-errors", "all", "--flannel-backend", "none", "--disable-proxy", "--disable-dns"])
        .env("RUST_LOG", "info")
        .env_remove("RKUBE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("agent log"))
        .spawn()
        .expect("run rkube agent");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the agent") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the agent did not give up within 60 s:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "the agent must refuse the token:\n{text}");
    text
}

/// Node `node`'s whole log.
fn full_log(c: &Cluster, node: &str) -> String {
    std::fs::read_to_string(c.node_dir(node).join("node.log")).unwrap_or_default()
}

/// Whether node `node` is Ready.
fn node_ready(c: &Cluster, node: &str) -> bool {
    let out = c.kubectl_out(&["get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

const SERVERS: &str = "https://192.168.77.11:6443,https://192.168.77.12:6443,https://192.168.77.13:6443";

const ETCD: &str = "http://192.168.77.2:2379,http://192.168.77.3:2379,http://192.168.77.4:2379";
/// The kinds a backup and its restore are compared on.
const KINDS: &str = "namespaces,configmaps,secrets,services,deployments,replicasets,serviceaccounts,roles,rolebindings";

/// [`common::comparable_objects`] of [`KINDS`].
fn objects(kubectl: impl Fn(&[&str]) -> String) -> Vec<serde_json::Value> {
    common::comparable_objects(KINDS, kubectl)
}

/// An `rkube server --disable-agent` on the host's loopback, on a restored data directory; stopped when dropped.
struct Restored {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl Restored {
    fn start(dir: &Path) -> Restored {
        let port = common::free_port();
        let log = dir.join("restored-server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args(["server", "--disable-agent", "--node-name", "restored", "--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir)
            .args(["--https-listen-port", &port.to_string()])
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log file"));
        let tail = || std::fs::read_to_string(&log).unwrap_or_default();
        let child = common::spawn_until_ready(&mut cmd, 60, &tail);
        Restored { child, url: format!("https://127.0.0.1:{port}"), log }
    }

    /// kubectl with the HA cluster's admin kubeconfig (its CA, its admin certificate) pointed at this server.
    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let mut all = vec!["--server", &self.url];
        all.extend_from_slice(args);
        let out = common::kubectl_with("1.33", kubeconfig, &all, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} against the restored server: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        common::stop_child(&mut self.child);
    }
}

/// `rkube backup` of the running cluster (from inside its namespace, where etcd listens: PKI from n1, objects
/// from the three members), restored into a new data directory: a single server on it shows the same objects
/// and trusts the same admin credentials.
fn backup_restores_into_a_new_server(c: &Cluster) {
    let work = tempfile::tempdir().expect("tempdir");
    let archive = work.path().join("ha.tar");
    let before = objects(|a| c.kubectl(a));
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/rkc-{}", c.name))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rkube"))
        .args(["backup", "--config", "", "--etcd-endpoints", ETCD, "--data-dir"])
        .arg(c.node_dir("n1"))
        .arg("-o")
        .arg(&archive)
        .output()
        .expect("rkube backup");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("objects at revision"), "{said}");
    let dir = work.path().join("restored");
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["restore", "--config", "", "-i"])
        .arg(&archive)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .expect("rkube restore");
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let ca = |d: &Path| std::fs::read(d.join("server/tls/ca.crt")).expect("ca.crt");
    assert_eq!(ca(&dir), ca(&c.node_dir("n1")), "the restored server has the cluster's CA");
    let restored = Restored::start(&dir);
    let after = objects(|a| restored.kubectl(&c.kubeconfig, a));
    let name =
        |i: &serde_json::Value| format!("{}/{}/{}", i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]);
    assert_eq!(before.iter().map(name).collect::<Vec<_>>(), after.iter().map(name).collect::<Vec<_>>());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "{} differs after the restore", name(b));
    }
    for kind in ["\"Deployment\"", "\"ConfigMap\"", "\"Secret\"", "\"Service\""] {
        assert!(before.iter().any(|i| name(i).starts_with(kind)), "{kind} objects were compared");
    }
    assert!(before.iter().any(|i| name(i).ends_with("/\"during-etcd\"")), "the configmaps written during the kills");
}

#[test]
fn three_servers_on_three_etcd_members_survive_a_server_and_a_member_crash() {
    let started = Instant::now();
    let c = Cluster::up(&["--servers", "3", "--etcd-members", "3", "--nodes", "2"]);
    eprintln!("[ha] up in {:.1} s", started.elapsed().as_secs_f64());
    for step in ["https://192.168.77.11:6443, https://192.168.77.12:6443, https://192.168.77.13:6443", "n4, n5 joining"]
    {
        assert!(c.up_output.contains(step), "{step} missing from:\n{}", c.up_output);
    }
    // The agents are the nodes; the servers are the control plane only.
    let nodes = c.kubectl(&["get", "nodes", "--no-headers"]);
    let names: Vec<&str> = nodes.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["n4", "n5"], "{nodes}");
    assert_eq!(c.etcdctl(&["member", "list"]).lines().count(), 3);
    let agent_args = std::fs::read_to_string(c.dir.join("cluster.json")).expect("cluster.json");
    assert!(agent_args.contains("https://192.168.77.11:6443,https://192.168.77.12:6443,https://192.168.77.13:6443"));

    // One leader among the servers, n1 (it started first); the standbys never led.
    for lease in ["kube-scheduler", "kube-controller-manager"] {
        assert!(holder(&c, lease).starts_with("n1_"), "{lease}: {}", holder(&c, lease));
        assert_eq!(became_leader(&c, "n1", lease), 1, "{lease}");
        assert_eq!(became_leader(&c, "n2", lease) + became_leader(&c, "n3", lease), 0, "{lease}");
    }

    // A new machine joins with a fresh token, given all three servers: n6 on the cluster network, with no
    // identity but the token. Its certificates come by CSRs (through the first server answering), approved and
    // issued; it shows Ready.
    let token = token_create(&c, &[]);
    let id = token.rsplit_once("::").and_then(|(_, t)| t.split_once('.')).map(|(id, _)| id.to_owned()).expect("id");
    let layout = rkube_cluster::Layout::with_dir(&c.dir, &c.name).expect("layout");
    let joined = Instant::now();
    // With every part of the node (proxy and DNS too), as `up`'s agents: the node role lets a token-joined
    // `system:node:<name>` keep its own `kube-system/kube-dns-<node>` EndpointSlice.
    let same_flags: [String; 0] = [];
    let rkube = Path::new(env!("CARGO_BIN_EXE_rkube"));
    let n6 = rkube_cluster::join::join(&layout, rkube, &token, &same_flags, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("joining n6: {e}\nn6's log:\n{}", full_log(&c, "n6")));
    assert_eq!(n6, 6);
    c.eventually(30, "n6 Ready", || node_ready(&c, "n6"));
    eprintln!("[ha] n6 joined by token and Ready in {:.1} s", joined.elapsed().as_secs_f64());
    let n6_args = &std::fs::read_to_string(c.dir.join("cluster.json")).expect("cluster.json");
    assert!(n6_args.contains(&token) && n6_args.contains(SERVERS), "n6 joins with the token through every server");
    let table = c.kubectl(&["get", "csr", "--no-headers"]);
    assert_eq!(table.lines().count(), 2, "n6's client and serving requests:\n{table}");
    assert_eq!(table.matches("Approved,Issued").count(), 2, "{table}");
    assert!(table.contains(&format!("system:bootstrap:{id}")) && table.contains("system:node:n6"), "{table}");
    for f in ["client-kubelet.crt", "serving-kubelet.crt", "server-ca.crt"] {
        assert!(c.node_dir("n6").join("agent").join(f).exists(), "n6 has no {f}");
    }
    // A token past its TTL is refused, with what to do, and no request is made with it.
    let expired = token_create(&c, &["--ttl", "1s"]);
    let expired_id = &expired[expired.len() - 23..expired.len() - 17];
    c.eventually(15, "the 1 s token expired", || {
        let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["token", "list", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .output()
            .expect("rkube token list");
        String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(expired_id) && l.contains("<expired>"))
    });
    let log = join_refused(&c, &expired);
    assert!(log.contains("401") && log.contains("invalid or has expired"), "{log}");
    assert!(log.contains("rkube token create"), "{log}");
    assert_eq!(c.kubectl(&["get", "csr", "--no-headers"]).lines().count(), 2, "no request with the expired token");

    c.load_busybox(IMAGE);
    c.apply(&web("web", 2));
    c.eventually(90, "web's 2 replicas Ready", || ready_replicas(&c, "web") == "2");
    let ip = c.kubectl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    c.eventually(30, "web served to n4", || fetch(&c, "n4", &ip) == "web");
    let pods_before = c.kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.uid}"]);
    assert!(write(&c, "before-server"));

    // The leader server n1 crashes (the agents' first choice too).
    let lease_n4 = renewed(&c, "n4");
    let lease_n6 = renewed(&c, "n6");
    let killed = Instant::now();
    c.stop("n1");
    // kubectl's view (the forwarder fails over): the API answers and takes writes through another server.
    c.eventually(20, "a write through another server", || write(&c, "during-server"));
    eprintln!("[ha] kubectl write after the server kill: {:.2} s", killed.elapsed().as_secs_f64());
    all_there(&c, &["before-server", "during-server"]);
    // The agents' view: n4 keeps renewing its node Lease (every 10 s) through another server.
    c.eventually(30, "n4's Lease renewed after n1 died", || renewed(&c, "n4") != lease_n4);
    // The token-joined agent fails over as well.
    c.eventually(30, "n6's Lease renewed after n1 died", || renewed(&c, "n6") != lease_n6);
    assert_eq!(fetch(&c, "n4", &ip), "web", "the service keeps serving");
    // A new leader (after the 15 s lease) schedules and runs a new Deployment.
    c.eventually(40, "a new scheduler leader", || {
        let h = holder(&c, "kube-scheduler");
        h.starts_with("n2_") || h.starts_with("n3_")
    });
    c.apply(&web("after", 1));
    c.eventually(60, "after's replica Ready with n1 down", || ready_replicas(&c, "after") == "1");
    let leaders: usize = ["n2", "n3"].iter().map(|n| became_leader(&c, n, "kube-controller-manager")).sum();
    assert_eq!(leaders, 1, "exactly one standby took over the controllers");
    // A machine joining now, n1 (its first server) down: discovery and CSRs go through the next one.
    let token = token_create(&c, &[]);
    // Through the command a user runs.
    let out = c.cmd("join", &["--token", &token, "--timeout", "90"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stderr).contains("n7 joined"),
        "joining n7: {}\nn7's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        full_log(&c, "n7")
    );
    c.eventually(30, "n7 Ready", || node_ready(&c, "n7"));
    let n7_log = std::fs::read_to_string(c.node_dir("n7").join("node.log")).unwrap_or_default();
    assert!(n7_log.contains("trying the next server") && n7_log.contains("192.168.77.11"), "{n7_log}");
    // No workload there (it has no test image).
    c.kubectl(&["cordon", "n7"]);

    // n1 comes back with no manual step: it serves again and stands by.
    c.start("n1");
    assert!(!holder(&c, "kube-scheduler").starts_with("n1_"));
    all_there(&c, &["before-server", "during-server"]);

    // etcd member 1 crashes (the first endpoint of every server): the API still reads and writes.
    assert!(write(&c, "before-etcd"));
    c.stop("etcd1");
    c.eventually(30, "a write with etcd1 down", || write(&c, "during-etcd"));
    all_there(&c, &["before-server", "during-server", "before-etcd", "during-etcd"]);
    assert_eq!(fetch(&c, "n5", &ip), "web", "the service keeps serving");
    c.kubectl(&["scale", "deployment", "after", "--replicas=2"]);
    c.eventually(60, "after scaled to 2 with etcd1 down", || ready_replicas(&c, "after") == "2");
    // Back, it rejoins from its data directory and catches up.
    c.start("etcd1");
    let health = c.etcdctl(&["endpoint", "health", "--cluster", "-w", "json"]);
    assert_eq!(health.matches("\"health\":true").count(), 3, "{health}");
    // etcd1's own copy (a serializable read is answered from the member's data, not through the leader).
    let key = "/registry/configmaps/default/during-etcd";
    c.eventually(10, "etcd1 caught up", || c.etcdctl(&["get", "--consistency=s", "--keys-only", key]).contains(key));
    let got = c.etcdctl(&["get", "--consistency=s", "--keys-only", key]);
    assert!(got.contains("during-etcd"), "{got}");
    all_there(&c, &["before-server", "during-server", "before-etcd", "during-etcd"]);

    // The first pods ran through it all.
    let pods_after = c.kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.uid}"]);
    assert_eq!(pods_before, pods_after, "web's pods were never replaced");
    assert_eq!(ready_replicas(&c, "web"), "2");

    // A backup of the populated cluster restores into a new server with the same objects.
    backup_restores_into_a_new_server(&c);

    // down leaves no trace: namespaces, processes (servers, agents, etcd members, forwarder), etcd data.
    let name = c.name.clone();
    let dir = c.dir.clone();
    c.down();
    assert_eq!(namespaces_of(&name), Vec::<String>::new());
    assert_eq!(processes_with(&dir.display().to_string()), Vec::<String>::new());
    assert!(!dir.exists() && !Path::new(TEST_CLUSTERS_DIR).join(&name).exists());
    eprintln!("[ha] whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// HA input that cannot work is refused before anything is made, with the fix.
#[test]
fn ha_bad_input_is_refused_with_the_fix() {
    let name = common::cluster::unique_name();
    let cases: &[(&[&str], &str)] = &[
        (&["--servers", "3"], "--servers 3 need a store they share: add --etcd-members 3"),
        (&["--servers", "9", "--etcd-members", "3"], "--servers 9 is out of range: give 1 to 7"),
        (&["--etcd-members", "8"], "--etcd-members 8 is out of range"),
    ];
    for (args, want) in cases {
        let mut all = vec!["up", "--name", &name];
        all.extend_from_slice(args);
        let out = common::cluster::rkube_cluster(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{args:?}: {err}");
        assert!(!Path::new(TEST_CLUSTERS_DIR).join(&name).exists(), "{args:?} left a state directory");
    }
}

/// The `default/kubernetes` Endpoints list every live API server (upstream's lease endpoint reconciler): a
/// crashed server drops out when its lease (15 s) expires, and is back once it runs again.
#[test]
fn kubernetes_endpoints_list_every_live_server() {
    let c = Cluster::up(&["--servers", "3", "--etcd-members", "3", "--nodes", "0", "--backend", "none"]);
    let endpoints = || c.kubectl(&["get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]);
    let all = "192.168.77.11 192.168.77.12 192.168.77.13";
    c.eventually(15, "every server in the endpoints", || endpoints() == all);
    let slice = c.kubectl(&["get", "endpointslice", "kubernetes", "-o", "jsonpath={.endpoints[*].addresses[0]}"]);
    assert_eq!(slice, all);
    c.stop("n2");
    c.eventually(35, "n2 out of the endpoints", || endpoints() == "192.168.77.11 192.168.77.13");
    c.start("n2");
    c.eventually(15, "n2 back in the endpoints", || endpoints() == all);
}
