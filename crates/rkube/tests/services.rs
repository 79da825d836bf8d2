//! Services on a real node (issue 7): `rkube server` with its embedded agent, service proxy and cluster DNS runs
//! inside a network namespace this test makes (entered with `nsenter --net` only, so containerd's mounts stay
//! on the host where `rkube agent clean` removes them), joined by a veth to a second namespace standing for a
//! machine outside the cluster. The guides' scenario on one node, in iptables and nftables modes: a Deployment
//! of busybox httpd, `kubectl expose`, the ClusterIP from the node and from a pod, the NodePort from outside,
//! the DNS name, hairpin, session affinity, scaling to 0 and back, the rules upstream users recognise.
//! The multi-node scenario (endpoints in two nodes' subnets) needs `rkube cluster` and the flannel wiring.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, kubectl_path, stop_child};

const NODE_IP: &str = "192.168.78.1";
const OUTSIDE_IP: &str = "192.168.78.2";
const NODE: &str = "svc-node";
const API_PORT: &str = "6443";

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A node namespace with `rkube server` in it and an "outside" namespace; all removed on drop.
struct Node {
    ns: String,
    outside: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Node {
    fn start(mode: &str) -> Node {
        let id = format!("{}-{}", std::process::id(), &mode[..3]);
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Node { ns: format!("rks-n-{id}"), outside: format!("rks-o-{id}"), dir, child: None };
        must(&["ip", "netns", "add", &node.ns]);
        must(&["ip", "netns", "add", &node.outside]);
        must(&[
            "ip",
            "-n",
            &node.ns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &node.outside,
        ]);
        for (ns, addr) in [(&node.ns, NODE_IP), (&node.outside, OUTSIDE_IP)] {
            must(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // Inside the node's namespace only: a default route, as a node has (service IPs are routed by it).
        must(&["ip", "-n", &node.ns, "route", "add", "default", "via", OUTSIDE_IP]);
        node
    }

    fn launch(&mut self, mode: &str) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_rkube"))
            .args(["server", "--node-name", NODE, "--node-ip", NODE_IP, "--bind-address", "0.0.0.0"])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--https-listen-port", API_PORT, "--flannel-backend", "none", "--proxy-mode", mode])
            .args(["--cluster-cidr", "172.30.0.0/16", "--node-cidr-mask-size", "24"])
            .arg("--resolv-conf")
            .arg(self.resolv_conf())
            .env("RUST_LOG", "info")
            .stderr(log);
        self.child = Some(common::spawn_until_ready(&mut cmd, 120, &|| self.log_tail()));
    }

    /// The node's resolv.conf: the test's own resolver in the outside namespace (see [`Upstream`]).
    fn resolv_conf(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("resolv.conf");
        std::fs::write(&path, format!("nameserver {OUTSIDE_IP}\n")).expect("resolv.conf");
        path
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Runs `args` in the node's network namespace.
    fn in_node(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .args(args)
            .output()
            .expect("nsenter")
    }

    fn in_outside(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.outside))
            .arg("--")
            .args(args)
            .output()
            .expect("nsenter")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        let k = kubectl_path("1.33").expect("kubectl 1.33");
        let kc = self.kubeconfig();
        let mut all = vec![k.to_str().expect("path"), "--kubeconfig", kc.to_str().expect("path")];
        all.extend_from_slice(args);
        self.in_node(&all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn import_busybox(&self) {
        let tar = rkube_cri::oci::busybox_image("busybox:svc").expect("busybox image");
        let file = self.dir.path().join("busybox.tar");
        std::fs::write(&file, tar).expect("write image");
        let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(["images", "import", file.to_str().expect("path"), "--data-dir"])
            .arg(self.dir.path())
            .output()
            .expect("rkube images");
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `curl` from the node: Ok(body) or Err(curl's exit code) (7: refused; 28: timed out).
    fn curl(&self, url: &str) -> Result<String, i32> {
        curl_result(self.in_node(&["curl", "-s", "--max-time", "3", url]))
    }

    fn curl_outside(&self, url: &str) -> Result<String, i32> {
        curl_result(self.in_outside(&["curl", "-s", "--max-time", "3", url]))
    }

    /// Polls `check` for up to `secs`, panicking with `what` and the server log.
    fn eventually(&self, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !check() {
            assert!(Instant::now() < deadline, "not within {secs} s: {what}\nserver log:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn curl_result(out: Output) -> Result<String, i32> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(out.status.code().unwrap_or(-1))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
            // The agent leaves pods running (as a kubelet does): remove them, in the node's namespace.
            let out = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", self.ns))
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_rkube"))
                .args(["agent", "clean", "--data-dir"])
                .arg(self.dir.path())
                .output();
            if let Ok(o) = out
                && !o.status.success()
            {
                eprintln!("rkube agent clean failed: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
        for ns in [&self.ns, &self.outside] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn jsonpath(node: &Node, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let p = format!("jsonpath={path}");
    all.extend_from_slice(&["-o", &p]);
    node.ok(&all)
}

/// In pod `pod`: `wget -qO- url` bounded by `timeout` (this busybox's `wget -T` crashes), Ok(body) or Err(stderr).
fn wget_in(node: &Node, pod: &str, url: &str) -> Result<String, String> {
    let out = node.kubectl(&["exec", pod, "--", "timeout", "5", "wget", "-qO-", url]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A resolver outside the cluster (in the test's outside namespace, at OUTSIDE_IP:53/udp) answering every A
/// query with [`UPSTREAM_ANSWER`]: what the cluster DNS forwards names outside the cluster to.
struct Upstream(Child);

const UPSTREAM_ANSWER: &str = "192.0.2.77";

impl Upstream {
    fn start(node: &Node) -> Upstream {
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{OUTSIDE_IP}',53))\n\
             while True:\n q,a=s.recvfrom(512)\n end=q.index(b'\\0',12)+5\n \
             r=q[:2]+b'\\x81\\x80'+q[4:6]+b'\\0\\x01\\0\\0\\0\\0'+q[12:end]\n \
             r+=b'\\xc0\\x0c\\0\\x01\\0\\x01\\0\\0\\0\\x1e\\0\\x04'+socket.inet_aton('{UPSTREAM_ANSWER}')\n \
             s.sendto(r,a)\n"
        );
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node.outside))
            .args(["--", "python3", "-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the upstream resolver");
        Upstream(child)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scenario(mode: &str) {
    let mut node = Node::start(mode);
    let _upstream = Upstream::start(&node);
    node.launch(mode);
    node.import_busybox();

    // The DNS Service and this node's slice, which the EndpointSlice controller leaves alone.
    assert_eq!(jsonpath(&node, &["get", "svc", "-n", "kube-system", "kube-dns"], "{.spec.clusterIP}"), "10.254.0.2");
    let sel = "kubernetes.io/service-name=kube-dns";
    let dns_slice = |n: &Node| {
        jsonpath(n, &["get", "endpointslices", "-n", "kube-system", "-l", sel], "{.items[*].endpoints[*].addresses[0]}")
    };
    assert_eq!(dns_slice(&node), NODE_IP);

    node.ok(&[
        "create",
        "deployment",
        "nginx",
        "--image=busybox:svc",
        "--replicas=2",
        "--port=8080",
        "--",
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    node.ok(&["expose", "deployment", "nginx", "--type=NodePort", "--name=example-service"]);
    node.ok(&["wait", "--for=condition=Available", "deployment/nginx", "--timeout=90s"]);
    let pods: Vec<String> = jsonpath(&node, &["get", "pods", "-l", "app=nginx"], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let cluster_ip = jsonpath(&node, &["get", "svc", "example-service"], "{.spec.clusterIP}");
    let node_port = jsonpath(&node, &["get", "svc", "example-service"], "{.spec.ports[0].nodePort}");
    let svc_url = format!("http://{cluster_ip}:8080/");
    node.eventually(30, "kubectl describe svc lists both endpoints", || {
        let d = node.ok(&["describe", "svc", "example-service"]);
        d.lines().any(|l| l.starts_with("Endpoints:") && l.matches("172.30.").count() == 2)
    });

    // ClusterIP from the node reaches both pods (random balancing).
    let mut seen = std::collections::BTreeSet::new();
    node.eventually(30, "ClusterIP:8080 from the node reaches both pods", || {
        if let Ok(body) = node.curl(&svc_url) {
            seen.insert(body);
        }
        seen.len() == 2
    });
    assert_eq!(seen.iter().cloned().collect::<Vec<_>>(), {
        let mut p = pods.clone();
        p.sort();
        p
    });
    // NodePort from the node and from outside the cluster.
    let np_url = format!("http://{NODE_IP}:{node_port}/");
    assert!(pods.contains(&node.curl(&np_url).expect("NodePort from the node")));
    assert!(pods.contains(&node.curl_outside(&np_url).expect("NodePort from outside")));

    // The rules, as upstream's.
    if mode == "iptables" {
        let save = String::from_utf8_lossy(&node.in_node(&["iptables-save", "-t", "nat"]).stdout).into_owned();
        let svc_chain = save
            .lines()
            .find(|l| l.contains("default/example-service") && l.contains("-j KUBE-SVC-"))
            .and_then(|l| l.split("-j ").nth(1))
            .expect("a KUBE-SERVICES jump to the service chain")
            .to_owned();
        let jumps: Vec<&str> =
            save.lines().filter(|l| l.starts_with(&format!("-A {svc_chain} ")) && l.contains("-j KUBE-SEP-")).collect();
        assert_eq!(jumps.len(), 2, "{svc_chain}:\n{save}");
        assert!(jumps[0].contains("-m statistic --mode random --probability 0.50000000000"), "{}", jumps[0]);
        assert!(!jumps[1].contains("--probability"), "the last endpoint takes the rest: {}", jumps[1]);
        assert!(save.contains("-A KUBE-NODEPORTS"), "{save}");
    } else {
        let table =
            String::from_utf8_lossy(&node.in_node(&["nft", "list", "table", "ip", "kube-proxy"]).stdout).into_owned();
        assert!(table.contains("default/example-service/tcp/"), "{table}");
        assert!(table.contains("numgen random mod 2 vmap"), "{table}");
    }
    // The proxy's health and metrics.
    assert_eq!(node.curl("http://127.0.0.1:10249/healthz").as_deref(), Ok("ok"));
    let metrics = node.curl("http://127.0.0.1:10249/metrics").expect("metrics");
    assert!(metrics.contains("kubeproxy_sync_proxy_rules_duration_seconds_count"), "{metrics}");

    // From a pod: the ClusterIP, the DNS name (full and by the search path), and itself through the service.
    let client = &pods[0];
    assert!(pods.contains(&wget_in(&node, client, &svc_url).expect("ClusterIP from a pod")));
    let ns_out = node.kubectl(&["exec", client, "--", "nslookup", "example-service.default.svc.cluster.local"]);
    let ns_text = String::from_utf8_lossy(&ns_out.stdout);
    assert!(
        ns_out.status.success() && ns_text.contains(&cluster_ip),
        "nslookup: {ns_text}\n{}",
        String::from_utf8_lossy(&ns_out.stderr)
    );
    assert!(
        pods.contains(
            &wget_in(&node, client, "http://example-service.default.svc.cluster.local:8080/").expect("by name")
        )
    );
    assert!(pods.contains(&wget_in(&node, client, "http://example-service:8080/").expect("by the search path")));
    let mut hairpin = false;
    for _ in 0..30 {
        if wget_in(&node, client, &svc_url).as_deref() == Ok(client.as_str()) {
            hairpin = true;
            break;
        }
    }
    assert!(hairpin, "{client} never reached itself through the service");
    // DNS from the node itself, at the service address.
    let out = node.in_node(&["busybox", "nslookup", "example-service.default.svc.cluster.local", "10.254.0.2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&cluster_ip), "{}", String::from_utf8_lossy(&out.stdout));
    // A name outside the cluster goes to the resolver of --resolv-conf (the test's own, outside the node).
    let out = node.in_node(&["busybox", "nslookup", "outside.example.", "10.254.0.2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(UPSTREAM_ANSWER), "forwarded query: {text}{}", String::from_utf8_lossy(&out.stderr));

    // Session affinity: one client, one pod.
    node.ok(&["expose", "deployment", "nginx", "--name=sticky", "--port=8080", "--session-affinity=ClientIP"]);
    let sticky_ip = jsonpath(&node, &["get", "svc", "sticky"], "{.spec.clusterIP}");
    let sticky = format!("http://{sticky_ip}:8080/");
    node.eventually(30, "the sticky service answers", || node.curl(&sticky).is_ok());
    let first = node.curl(&sticky).expect("sticky");
    for _ in 0..10 {
        assert_eq!(node.curl(&sticky).as_deref(), Ok(first.as_str()), "affinity broken");
    }

    // A selector that matches nothing: refused at once (REJECT), not a timeout.
    node.ok(&["create", "service", "clusterip", "nobody", "--tcp=8080:8080"]);
    let nobody = format!("http://{}:8080/", jsonpath(&node, &["get", "svc", "nobody"], "{.spec.clusterIP}"));
    node.eventually(10, "a service without endpoints refuses", || node.curl(&nobody) == Err(7));

    // Scale to 0: refused; back to 2: answers again.
    node.ok(&["scale", "deployment", "nginx", "--replicas=0"]);
    // While the pods terminate they are the serving-terminating fallback (as upstream), and a dying pod
    // refuses too; the REJECT is asserted once they are gone.
    node.eventually(90, "the pods are gone", || {
        jsonpath(&node, &["get", "pods", "-l", "app=nginx"], "{.items[*].metadata.name}").trim().is_empty()
    });
    node.eventually(60, "ClusterIP refuses with no endpoints", || node.curl(&svc_url) == Err(7));
    // Refused (curl's 7), not timed out (28): the REJECT, every time.
    assert_eq!(node.curl(&svc_url), Err(7));
    node.ok(&["scale", "deployment", "nginx", "--replicas=2"]);
    node.eventually(90, "ClusterIP answers after scaling back", || node.curl(&svc_url).is_ok());
    // No pod creation may be in flight when the node stops (a sandbox half made is one clean cannot find).
    node.ok(&["rollout", "status", "deployment/nginx", "--timeout=90s"]);

    // The DNS slice survived the EndpointSlice controller's work all along.
    assert_eq!(dns_slice(&node), NODE_IP);
}

#[test]
fn guides_scenario_on_one_node_iptables() {
    scenario("iptables");
}

#[test]
fn guides_scenario_on_one_node_nftables() {
    scenario("nftables");
}

/// Runs `rkube server --proxy-mode ipvs` (plus `extra`) in `node`'s namespace until it exits; its log.
fn ipvs_start(node: &mut Node, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("data dir");
    let log_path = node.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.ns))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rkube"))
        .args(["server", "--node-name", NODE, "--node-ip", NODE_IP, "--data-dir"])
        .arg(dir.path())
        .args(["--https-listen-port", API_PORT, "--flannel-backend", "none", "--proxy-mode", "ipvs", "--disable-dns"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            stop_child(&mut child);
            panic!("rkube server kept running in ipvs mode:\n{}", node.log_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The node got as far as the proxy: remove what its agent left (the pause image, no pods).
    let _ = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.ns))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rkube"))
        .args(["agent", "clean", "--data-dir"])
        .arg(dir.path())
        .output();
    assert!(!status.success());
    std::fs::read_to_string(&log_path).unwrap_or_default()
}

#[test]
fn ipvs_mode_fails_at_start_naming_the_missing_modules() {
    let mut node = Node::start("ipvs");
    // The host preflight refuses first, naming the modules (the guides' remedy: modprobe them).
    let log = ipvs_start(&mut node, &[]);
    assert!(log.contains("ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh"), "{log}");
    // Past the preflight, the proxy itself refuses, with the same modules.
    let log = ipvs_start(&mut node, &["--ignore-preflight-errors=all"]);
    assert!(log.contains("can't use the IPVS proxier"), "{log}");
    assert!(log.contains("ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh"), "{log}");
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    let out = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["agent", "--server", "https://127.0.0.1:1", "--proxy-mode", "userspace"])
        .args(["--nodeport-addresses", "eth0", "--proxy-sync-period", "0", "--ipvs-scheduler", "fastest"])
        .arg("--data-dir")
        .arg(tempfile::tempdir().expect("dir").path())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in [
        "--proxy-mode \"userspace\" is not a proxy mode",
        "--nodeport-addresses \"eth0\" is not an IPv4 CIDR",
        "--proxy-sync-period 0 must be a number of seconds greater than 0",
        "--ipvs-scheduler \"fastest\" is not an IPVS scheduler",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn the_api_refuses_what_upstream_refuses() {
    let s = Server::start();
    let clash = "apiVersion: v1\nkind: Service\nmetadata: {name: clash}\nspec:\n  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n";
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], clash);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("spec.ports[1]: Duplicate value"), "{err}");
    let err = s.fails("1.33", &["create", "service", "nodeport", "low", "--tcp=80:8080", "--node-port=80"]);
    assert!(err.contains("provided port is not in the valid range"), "{err}");
    s.ok("1.33", &["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30123"]);
    let err = s.fails("1.33", &["create", "service", "nodeport", "np2", "--tcp=80:8080", "--node-port=30123"]);
    assert!(err.contains("provided port is already allocated"), "{err}");
    // An endpoint address no node network can hold (loopback) is refused, as upstream refuses it.
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: lo\n  labels: {kubernetes.io/service-name: np}\naddressType: IPv4\nendpoints:\n- addresses: [127.0.0.1]\nports: [{port: 8080}]\n";
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], slice);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may not be in the loopback range"), "{err}");
}

/// The guides' Deployment, with its two replicas kept on different nodes (the scenario needs endpoints in two
/// nodes' subnets; `kubectl create deployment` would leave that to the scheduler's spreading).
const SPREAD_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, labels: {app: nginx}}
spec:
  replicas: 2
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: nginx}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: rkube.io/test/busybox:svc
        ports: [{containerPort: 8080}]
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#;

fn cluster_scenario(mode: &str) {
    use common::cluster::Cluster;
    let c = Cluster::up(&["--backend", "vxlan", "--proxy-mode", mode]);
    c.load_busybox("rkube.io/test/busybox:svc");
    c.apply(SPREAD_DEPLOYMENT);
    c.kubectl(&["expose", "deployment", "nginx", "--type=NodePort", "--name=example-service"]);
    c.kubectl(&["wait", "--for=condition=Available", "deployment/nginx", "--timeout=90s"]);
    let get = |args: &[&str], path: &str| {
        let mut all = args.to_vec();
        let p = format!("jsonpath={path}");
        all.extend_from_slice(&["-o", &p]);
        c.kubectl(&all).trim().to_owned()
    };
    let mut pods: Vec<String> = get(&["get", "pods", "-l", "app=nginx"], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    pods.sort();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let cluster_ip = get(&["get", "svc", "example-service"], "{.spec.clusterIP}");
    let node_port = get(&["get", "svc", "example-service"], "{.spec.ports[0].nodePort}");
    let svc_url = format!("http://{cluster_ip}:8080/");

    // kubectl describe: two endpoints, in two different nodes' /24s.
    c.eventually(30, "describe svc lists two endpoints in two subnets", || {
        let d = c.kubectl(&["describe", "svc", "example-service"]);
        let Some(line) = d.lines().find(|l| l.starts_with("Endpoints:")) else { return false };
        let subnets: std::collections::BTreeSet<String> = line
            .trim_start_matches("Endpoints:")
            .split(',')
            .filter_map(|e| e.trim().rsplit_once('.').map(|(net, _)| net.to_owned()))
            .collect();
        line.matches(":8080").count() == 2 && subnets.len() == 2
    });

    let curl = |node: &str, url: &str| curl_result(c.exec_out(node, &["curl", "-s", "--max-time", "3", url]));
    let nodes: Vec<String> = (1..=c.nodes).map(|i| format!("n{i}")).collect();
    for n in &nodes {
        // ClusterIP from every node reaches both pods (one of them across the vxlan).
        let mut seen = std::collections::BTreeSet::new();
        c.eventually(30, &format!("ClusterIP:8080 from {n} reaches both pods"), || {
            if let Ok(b) = curl(n, &svc_url) {
                seen.insert(b);
            }
            seen.len() == 2
        });
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), pods);
        // NodeIP:NodePort on every node, from n1.
        let url = format!("http://{}:{node_port}/", c.node_ip(n));
        c.eventually(20, &format!("NodePort on {n}"), || curl("n1", &url).is_ok_and(|b| pods.contains(&b)));
    }

    // iptables-save on a node: the service chain with two KUBE-SEP jumps at 0.5.
    if mode == "iptables" {
        let save = c.exec("n2", &["iptables-save", "-t", "nat"]);
        let chain = save
            .lines()
            .find(|l| l.contains("default/example-service") && l.contains("-j KUBE-SVC-"))
            .and_then(|l| l.split("-j ").nth(1))
            .expect("KUBE-SERVICES jump")
            .to_owned();
        let jumps: Vec<&str> =
            save.lines().filter(|l| l.starts_with(&format!("-A {chain} ")) && l.contains("-j KUBE-SEP-")).collect();
        assert_eq!(jumps.len(), 2, "{save}");
        assert!(jumps[0].contains("--probability 0.50000000000"), "{}", jumps[0]);
    } else {
        let table = c.exec("n2", &["nft", "list", "table", "ip", "kube-proxy"]);
        assert!(table.contains("numgen random mod 2 vmap"), "{table}");
    }

    // From a pod: ClusterIP, the DNS name, itself through the service (hairpin).
    let exec = |pod: &str, cmd: &[&str]| {
        let mut all = vec!["exec", pod, "--"];
        all.extend_from_slice(cmd);
        c.kubectl_out(&all)
    };
    let wget = |pod: &str, url: &str| {
        let o = exec(pod, &["timeout", "5", "wget", "-qO-", url]);
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    for pod in &pods {
        assert!(wget(pod, &svc_url).is_some_and(|b| pods.contains(&b)), "ClusterIP from {pod}");
        let ns = exec(pod, &["nslookup", "example-service.default.svc.cluster.local"]);
        assert!(String::from_utf8_lossy(&ns.stdout).contains(&cluster_ip), "nslookup from {pod}: {ns:?}");
        assert!(
            wget(pod, "http://example-service.default.svc.cluster.local:8080/").is_some_and(|b| pods.contains(&b)),
            "the DNS name from {pod}"
        );
        assert!((0..30).any(|_| wget(pod, &svc_url).as_deref() == Some(pod.as_str())), "hairpin from {pod}");
    }

    // Session affinity: one client, one pod.
    c.kubectl(&["expose", "deployment", "nginx", "--name=sticky", "--port=8080", "--session-affinity=ClientIP"]);
    let sticky = format!("http://{}:8080/", get(&["get", "svc", "sticky"], "{.spec.clusterIP}"));
    c.eventually(30, "sticky answers", || curl("n3", &sticky).is_ok());
    let first = curl("n3", &sticky).expect("sticky");
    for _ in 0..10 {
        assert_eq!(curl("n3", &sticky).as_deref(), Ok(first.as_str()));
    }

    // Scale to 0: refused at once; back: answers.
    c.kubectl(&["scale", "deployment", "nginx", "--replicas=0"]);
    c.eventually(60, "ClusterIP refuses", || curl("n2", &svc_url) == Err(7));
    c.kubectl(&["scale", "deployment", "nginx", "--replicas=2"]);
    c.eventually(90, "ClusterIP answers again", || curl("n2", &svc_url).is_ok());
    c.kubectl(&["rollout", "status", "deployment/nginx", "--timeout=90s"]);
}

#[test]
fn guides_scenario_on_three_nodes_iptables() {
    cluster_scenario("iptables");
}

#[test]
fn guides_scenario_on_three_nodes_nftables() {
    cluster_scenario("nftables");
}
