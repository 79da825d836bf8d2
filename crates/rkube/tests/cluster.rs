//! `rkube cluster` end to end: several nodes in network namespaces on this machine, kubectl from the host,
//! exec, image loading, a node crashing and coming back, bad input, a failed or interrupted `up`, and `down`
//! leaving no trace (namespaces, links, mounts, iptables rules, processes).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, NO_NETWORK, TEST_CLUSTERS_DIR, rkube_cluster, unique_name};

const IMAGE: &str = "rkube.io/test/busybox:cluster";

/// What a cluster may leave on the host, filtered to what can be told apart as this cluster's (tests of
/// other processes run at the same time): its namespaces, host links pointing into them, mounts under its
/// state directory or of its namespaces, processes with its state directory in their command line, and
/// iptables rules of the pod network or the service proxy (which belong in the nodes' namespaces only).
#[derive(Debug, PartialEq)]
struct Trace {
    netns: Vec<String>,
    links: Vec<String>,
    mounts: Vec<String>,
    processes: Vec<String>,
    iptables: Vec<String>,
}

fn lines(program: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn trace(name: &str) -> Trace {
    let dir = Path::new(TEST_CLUSTERS_DIR).join(name).display().to_string();
    let ns = format!("rkc-{name}");
    let ours =
        |l: &String| l.contains(&dir) || l.split_whitespace().any(|w| w == ns || w.starts_with(&format!("{ns}-n")));
    let mut processes = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&dir) {
                processes.push(cmdline);
            }
        }
    }
    let mut iptables = lines("iptables-save", &[]);
    iptables.extend(lines("iptables-legacy-save", &[]));
    let signature = ["FLANNEL", "KUBE-", "172.30.", "192.168.77."];
    Trace {
        netns: lines("ip", &["netns", "list"]).into_iter().filter(|l| ours(l)).collect(),
        links: lines("ip", &["-o", "link"]).into_iter().filter(|l| ours(l)).collect(),
        mounts: std::fs::read_to_string("/proc/mounts")
            .expect("mounts")
            .lines()
            .map(str::to_owned)
            .filter(|l| ours(l))
            .collect(),
        processes,
        iptables: iptables.into_iter().filter(|l| signature.iter().any(|s| l.contains(s))).collect(),
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn pod_on(node: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: "{IMAGE}", imagePullPolicy: Never, command: ["sh", "-c", "echo hello from {node}; exec sleep 3600"]}}
"#
    )
}

fn pod_field(c: &Cluster, pod: &str, path: &str) -> String {
    let out = c.kubectl_out(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three nodes Ready; list, kubeconfig, exec, load; a pod on n3 keeps running while n3 crashes and comes
/// back Ready (the pod adopted, not restarted); `down` leaves nothing.
#[test]
fn a_three_node_cluster_lives_and_leaves_no_trace() {
    let name_before = unique_name();
    // The name this test's cluster gets next; nothing of it may exist yet.
    let before = trace(&name_before);
    // The defaults: vxlan, the service proxy and DNS on every node.
    let c = Cluster::up_named(&name_before, &[]);
    for step in ["[1/5] network", "[2/5] etcd", "[3/5] server", "[4/5] agents", "[5/5] nodes Ready"] {
        assert!(c.up_output.contains(step), "{step} missing from:\n{}", c.up_output);
    }
    let nodes = c.kubectl(&["get", "nodes", "--no-headers", "-o", "wide"]);
    for (n, ip) in [("n1", "192.168.77.11"), ("n2", "192.168.77.12"), ("n3", "192.168.77.13")] {
        let line = nodes.lines().find(|l| l.starts_with(&format!("{n} "))).unwrap_or_else(|| panic!("{n}:\n{nodes}"));
        assert!(line.contains(" Ready ") && line.contains(ip), "{line}");
    }

    // list and kubeconfig.
    let list = String::from_utf8_lossy(&rkube_cluster(&["list"]).stdout).into_owned();
    let row = list.lines().find(|l| l.starts_with(&format!("{} ", c.name))).unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains(" 3 ") && row.contains("3/3") && row.contains("vxlan"), "{row}");
    let kc = c.cmd("kubeconfig", &[]);
    assert_eq!(String::from_utf8_lossy(&kc.stdout).trim(), c.kubeconfig.display().to_string());
    let server = std::fs::read_to_string(&c.kubeconfig).expect("kubeconfig");
    assert!(server.contains("server: https://127.0.0.1:"), "{server}");

    // Each node has its own namespace: eth0 at its address, the default route via the bridge.
    let addr = c.exec("n2", &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains("192.168.77.12/24"), "{addr}");
    assert!(c.exec("n2", &["ip", "route"]).contains("default via 192.168.77.1 dev eth0"));
    assert!(c.exec("n3", &["busybox", "ping", "-c1", "-W2", "192.168.77.11"]).contains("1 packets received"));
    let failed = c.exec_out("n1", &["sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7), "exec passes the command's exit code on");

    // Nothing of the cluster in the host's namespace.
    let during = trace(&c.name);
    assert!(during.links.is_empty(), "links of the cluster in the host namespace: {:?}", during.links);
    assert_eq!(during.iptables, before.iptables, "the host's iptables changed");
    assert!(!during.netns.is_empty() && !during.processes.is_empty(), "{during:?}");

    // load: the image is in every node; a pod on n3 runs, its log comes through n1's API from n3's agent.
    c.load_busybox(IMAGE);
    c.apply(&pod_on("n3", "p3"));
    c.eventually(60, "p3 Running", || pod_field(&c, "p3", "{.status.phase}") == "Running");
    assert_eq!(pod_field(&c, "p3", "{.spec.nodeName}"), "n3");
    c.eventually(20, "p3's log", || {
        String::from_utf8_lossy(&c.kubectl_out(&["logs", "p3"]).stdout).contains("hello from n3")
    });
    assert_eq!(c.kubectl(&["exec", "p3", "--", "echo", "inside"]).trim(), "inside");

    // n3 crashes: rkube and containerd killed, the pod's shim lives on; started again, n3 is Ready and the
    // pod is adopted, not restarted.
    let shim = |dir: &str| during_shims(dir);
    let n3_dir = c.node_dir("n3").display().to_string();
    assert!(!shim(&n3_dir).is_empty(), "no shim of n3");
    c.stop("n3");
    let list = String::from_utf8_lossy(&rkube_cluster(&["list"]).stdout).into_owned();
    assert!(list.lines().any(|l| l.starts_with(&format!("{} ", c.name)) && l.contains("2/3")), "{list}");
    assert!(!shim(&n3_dir).is_empty(), "the pod's shim must survive the crash");
    let again = c.cmd("stop", &["n3"]);
    assert!(!again.status.success() && stderr(&again).contains("not running"), "{}", stderr(&again));
    c.start("n3");
    c.wait_all_ready(60);
    c.eventually(30, "kubectl exec through the restarted agent", || {
        c.kubectl_out(&["exec", "p3", "--", "true"]).status.success()
    });
    assert_eq!(pod_field(&c, "p3", "{.status.phase}"), "Running");
    assert_eq!(pod_field(&c, "p3", "{.status.containerStatuses[0].restartCount}"), "0");
    let running = c.cmd("start", &["n3"]);
    assert!(stderr(&running).contains("runs already"), "{}", stderr(&running));

    let uid = pod_field(&c, "p3", "{.metadata.uid}");
    assert!(!pod_cgroups(&uid).is_empty(), "p3's cgroups exist while it runs");
    let name = c.name.clone();
    c.down();
    assert_eq!(trace(&name), before, "rkube cluster down left something behind");
    assert_eq!(pod_cgroups(&uid), Vec::<String>::new(), "p3's cgroups are removed");
    assert!(!Path::new(TEST_CLUSTERS_DIR).join(&name).exists());
    let gone = rkube_cluster(&["kubeconfig", &name]);
    assert!(!gone.status.success() && stderr(&gone).contains("no cluster"), "{}", stderr(&gone));
}

/// The cgroup directories of pod `uid` (`kubepods/[tier/]pod<uid>` in every hierarchy).
fn pod_cgroups(uid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for c in std::fs::read_dir("/sys/fs/cgroup").expect("/sys/fs/cgroup").flatten() {
        for tier in ["", "besteffort", "burstable"] {
            let dir = c.path().join("kubepods").join(tier).join(format!("pod{uid}"));
            if dir.is_dir() {
                found.push(dir.display().to_string());
            }
        }
    }
    found
}

/// containerd shims serving a node whose data directory is `dir`.
fn during_shims(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("containerd-shim") && cmdline.contains(dir) {
                out.push(cmdline);
            }
        }
    }
    out
}

/// Bad input is refused before anything is made, with the value and the fix; a taken name is refused and the
/// cluster holding it keeps working.
#[test]
fn bad_input_is_refused_with_the_fix() {
    let name = unique_name();
    let cases: &[(&[&str], &str)] = &[
        (&["--backend", "udp"], "unknown backend \"udp\": use vxlan, host-gw or none"),
        (&["--nodes", "0"], "--nodes 0 is out of range"),
        (&["--proxy-mode", "userspace"], "unknown proxy mode \"userspace\""),
    ];
    for (args, want) in cases {
        let mut all = vec!["up", "--name", &name];
        all.extend_from_slice(args);
        let out = rkube_cluster(&all);
        assert!(!out.status.success() && stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(!Path::new(TEST_CLUSTERS_DIR).join(&name).exists(), "{args:?} left a state directory");
    }
    let out = rkube_cluster(&["up", "--name", "Bad_Name"]);
    assert!(stderr(&out).contains("cluster name \"Bad_Name\""), "{}", stderr(&out));
    let out = rkube_cluster(&["up", "--name", "x-n1"]);
    assert!(stderr(&out).contains("must not end in -n<number>"), "{}", stderr(&out));
    for sub in [
        &["down", "nosuch"][..],
        &["kubeconfig", "nosuch"],
        &["stop", "nosuch", "n1"],
        &["exec", "nosuch", "n1", "--", "true"],
    ] {
        let out = rkube_cluster(sub);
        assert!(!out.status.success() && stderr(&out).contains("no cluster \"nosuch\""), "{sub:?}: {}", stderr(&out));
    }

    // A cluster with its state elsewhere (--state-dir) is found by name through a link.
    let name = unique_name();
    let state = std::env::temp_dir().join(format!("rkube-test-state-{name}"));
    let state_arg = state.display().to_string();
    let c =
        Cluster::up_named(&name, &["--nodes", "1", "--backend", "none", "--no-services", "--state-dir", &state_arg]);
    assert!(state.join("n1").is_dir() && std::fs::read_link(&c.dir).is_ok_and(|t| t == state));
    let out = rkube_cluster(&["up", "--name", &c.name, "--nodes", "1", "--backend", "none", "--no-services"]);
    assert!(!out.status.success() && stderr(&out).contains("exists already"), "{}", stderr(&out));
    assert!(c.kubectl(&["get", "nodes"]).contains("n1"), "the existing cluster must be untouched");
    let out = c.cmd("exec", &["n4", "--", "true"]);
    assert!(stderr(&out).contains("no node \"n4\" in this cluster: its nodes are n1 to n1"), "{}", stderr(&out));
    let link = c.dir.clone();
    c.down();
    assert!(!state.exists() && !link.is_symlink(), "down removes the state directory and the link to it");
}

/// A step that fails stops `up` with that step's log tail, and what `up` made is gone.
#[test]
fn a_failed_up_shows_the_log_and_removes_what_it_made() {
    let name = unique_name();
    let before = trace(&name);
    let out = rkube_cluster(&["up", "--name", &name, "--nodes", "2", "--backend", "none", "--node-arg=--no-such-flag"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[3/5] server failed: the process exited"), "{err}");
    assert!(err.contains("--no-such-flag"), "the node's log tail must say why:\n{err}");
    assert!(err.contains("removing cluster"), "{err}");
    assert_eq!(trace(&name), before);
    assert!(!Path::new(TEST_CLUSTERS_DIR).join(&name).exists());
}

/// `up` killed half-way (its node processes detached and running): `down` removes all of it.
#[test]
fn down_removes_a_half_built_cluster() {
    use std::io::{BufRead, BufReader};
    let name = unique_name();
    let before = trace(&name);
    let mut up = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["cluster", "up", "--name", &name, "--nodes", "3"])
        .args(NO_NETWORK)
        .env("RKUBE_CLUSTER_DIR", TEST_CLUSTERS_DIR)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rkube cluster up");
    let stderr = up.stderr.take().expect("stderr");
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        // Agents are being started: the server and the forwarder run.
        if line.starts_with("[4/5]") {
            break;
        }
        assert!(Instant::now() < deadline, "no [4/5] from up");
    }
    let _ = up.kill();
    let _ = up.wait();
    assert!(!trace(&name).processes.is_empty(), "the server must have been running");
    let out = rkube_cluster(&["down", &name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(trace(&name), before);
}

// ---- Issue 6's acceptance: the pod network across three nodes ----

/// A pod on `node` serving its name over HTTP on 8080 (busybox httpd), from a directory whose name is unique
/// on this machine (so its process, and through it its network namespace, can be found).
fn server_pod(c: &Cluster, node: &str, name: &str) -> String {
    let dir = format!("/w-{name}-{}", c.name);
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "{IMAGE}"
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p {dir} && echo {name} > {dir}/index.html && exec httpd -f -p 8080 -h {dir}"]
"#
    )
}

/// Starts server pods `s1`, `s2`, `s3` on `n1`, `n2`, `n3` and returns their IPs once they run.
fn start_server_pods(c: &Cluster) -> Vec<String> {
    c.load_busybox(IMAGE);
    for i in 1..=3 {
        c.apply(&server_pod(c, &format!("n{i}"), &format!("s{i}")));
    }
    (1..=3)
        .map(|i| {
            let pod = format!("s{i}");
            c.eventually(60, &format!("{pod} Running"), || pod_field(c, &pod, "{.status.phase}") == "Running");
            pod_field(c, &pod, "{.status.podIP}")
        })
        .collect()
}

/// An HTTP GET of `http://<ip>:8080/` with busybox nc (busybox-static's wget crashes in its static glibc
/// resolver), as a shell command; the page is the last line of its output.
fn http_get(ip: &str) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080")
}

fn last_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

/// Asserts pod `from` fetches pod `to`'s page at `ip` over TCP (kubectl exec + nc).
fn tcp_reaches(c: &Cluster, from: &str, to: &str, ip: &str) {
    c.eventually(20, &format!("{from} reaches {to} at {ip}:8080 over TCP"), || {
        last_line(&c.kubectl_out(&["exec", from, "--", "sh", "-c", &http_get(ip)])) == to
    });
}

/// Asserts node `node` (its network namespace) fetches pod `to`'s page at `ip`.
fn node_reaches(c: &Cluster, node: &str, to: &str, ip: &str) {
    c.eventually(20, &format!("node {node} reaches {to} at {ip}:8080"), || {
        last_line(&c.exec_out(node, &["busybox", "sh", "-c", &http_get(ip)])) == to
    });
}

/// Asserts a UDP datagram from pod `from` reaches pod `to` at `ip` and the answer comes back, and that `to`
/// saw it coming from `from_ip` (no masquerading inside the cluster network). The busybox in the test image
/// has no UDP netcat, so both ends are the host's python3 run in the pods' network namespaces.
fn udp_roundtrip(c: &Cluster, from: &str, from_ip: &str, to: &str, ip: &str) {
    let server = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999)); s.settimeout(20)
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(b"pong " + peer[0].encode(), peer)
"#;
    let client = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for _ in range(10):
    s.sendto(b"ping", ("{ip}", 9999))
    try:
        print(s.recvfrom(100)[0].decode()); break
    except socket.timeout:
        pass
"#
    );
    let mut srv = Command::new("nsenter")
        .arg(format!("--net={}", c.pod_netns(to)))
        .args(["--", "python3", "-c", server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("UDP server");
    let mut line = String::new();
    let stdout = srv.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("server output");
    let out = Command::new("nsenter")
        .arg(format!("--net={}", c.pod_netns(from)))
        .args(["--", "python3", "-c", &client])
        .output()
        .expect("UDP client");
    let _ = srv.kill();
    let _ = srv.wait();
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(answer, format!("pong {from_ip}"), "UDP {from} -> {to} ({ip}): {}", stderr(&out));
}

/// The node a pod IP's subnet (`172.30.X.0/24`) belongs to must be `node`.
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let prefix = subnet.trim_end_matches("0/24");
    ip.starts_with(prefix)
}

/// `(subnet "172.30.X.0/24", lease JSON)` of every lease under /kube-centos/network/subnets.
fn etcd_leases(c: &Cluster) -> Vec<(String, serde_json::Value)> {
    let out = c.etcdctl(&["get", "--prefix", "/kube-centos/network/subnets/"]);
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    lines
        .chunks(2)
        .map(|kv| {
            let subnet = kv[0].rsplit('/').next().expect("key").replace('-', "/");
            (subnet, serde_json::from_str(kv[1]).unwrap_or_else(|e| panic!("lease {}: {e}: {}", kv[0], kv[1])))
        })
        .collect()
}

/// The node's flannel files agree with its subnet `172.30.X.0/24`.
fn files_agree(c: &Cluster, node: &str, subnet: &str) {
    let gateway = subnet.replace("0/24", "1/24");
    let env = std::fs::read_to_string(c.node_dir(node).join("flannel/subnet.env")).expect("subnet.env");
    for want in ["FLANNEL_NETWORK=172.30.0.0/16", &format!("FLANNEL_SUBNET={gateway}"), "FLANNEL_IPMASQ=true"] {
        assert!(env.lines().any(|l| l == want), "{node}: {want} missing from subnet.env:\n{env}");
    }
    let docker = std::fs::read_to_string(c.node_dir(node).join("flannel/docker")).expect("docker options");
    let opts = docker.lines().find(|l| l.starts_with("DOCKER_NETWORK_OPTIONS=")).unwrap_or_default();
    assert!(opts.contains(&format!("--bip={gateway}")), "{node}: {docker}");
    let mtu = env.lines().find_map(|l| l.strip_prefix("FLANNEL_MTU=")).expect("FLANNEL_MTU");
    assert!(opts.contains(&format!("--mtu={mtu}")), "{node}: subnet.env MTU {mtu} vs {docker}");
}

/// vxlan with leases in etcd (the guides' setup): three leases in flannel's JSON, a /24 each, pods get
/// addresses from it and reach each other over TCP and UDP across nodes, a node reaches a pod on another;
/// `flannel.1` as flannel makes it, with a route, neighbour and FDB entry per peer; an agent restarted keeps
/// its subnet and its pods' connectivity; a node removed takes its routes, neighbours and FDB entries along.
#[test]
fn vxlan_with_etcd_leases_connects_pods_across_nodes() {
    let c = Cluster::up(&["--backend", "vxlan", "--etcd", "--no-services"]);
    let config: serde_json::Value =
        serde_json::from_str(c.etcdctl(&["get", "--print-value-only", "/kube-centos/network/config"]).trim())
            .expect("network config");
    assert_eq!(config["Network"], "172.30.0.0/16");

    let leases = etcd_leases(&c);
    assert_eq!(leases.len(), 3, "{leases:?}");
    let mut subnet_of = std::collections::BTreeMap::new();
    let mut mac_of = std::collections::BTreeMap::new();
    for (subnet, lease) in &leases {
        let ip = lease["PublicIP"].as_str().expect("PublicIP");
        let node = format!("n{}", ip.rsplit('.').next().and_then(|d| d.parse::<u8>().ok()).expect("IP") - 10);
        assert_eq!(lease["BackendType"], "vxlan", "{lease}");
        assert_eq!(lease["BackendData"]["VNI"], 1, "{lease}");
        let link = c.exec(&node, &["ip", "-o", "link", "show", "flannel.1"]);
        let mac = lease["BackendData"]["VtepMAC"].as_str().expect("VtepMAC").to_owned();
        assert!(link.contains(&format!("link/ether {mac} ")), "{node}'s lease has VtepMAC {mac}, flannel.1: {link}");
        assert!(subnet.starts_with("172.30.") && subnet.ends_with(".0/24"), "{subnet}");
        files_agree(&c, &node, subnet);
        // Node IPAM is off with etcd leases (`up --etcd`): the agent gives its node the lease as podCIDR.
        let cidr = c.kubectl(&["get", "node", &node, "-o", "jsonpath={.spec.podCIDR}"]);
        assert_eq!(cidr.trim(), subnet, "{node}'s spec.podCIDR is its lease");
        subnet_of.insert(node.clone(), subnet.clone());
        mac_of.insert(node, mac);
    }
    assert_eq!(subnet_of.len(), 3, "one lease per node: {leases:?}");

    // flannel.1 as flannel makes it; per peer a route, a neighbour and an FDB entry.
    let link = c.exec("n1", &["ip", "-d", "link", "show", "flannel.1"]);
    for want in ["mtu 1450", "vxlan id 1", "dstport 8472", "nolearning"] {
        assert!(link.contains(want), "{want} missing: {link}");
    }
    let peer_entries = |on: &str, peer: &str| {
        let s = subnet_of[peer].trim_end_matches("/24").to_owned();
        let route = c
            .exec(on, &["ip", "route"])
            .lines()
            .any(|l| l.starts_with(&format!("{s}/24 via {s} dev flannel.1 onlink")));
        let neigh =
            c.exec(on, &["ip", "neigh", "show", "dev", "flannel.1"]).contains(&format!("{s} lladdr {}", mac_of[peer]));
        let fdb = c.exec(on, &["bridge", "fdb", "show", "dev", "flannel.1"]).contains(&format!(
            "{} dst {}",
            mac_of[peer],
            c.node_ip(peer)
        ));
        (route, neigh, fdb)
    };
    for (on, peer) in [("n1", "n2"), ("n1", "n3"), ("n2", "n3"), ("n3", "n1")] {
        assert_eq!(peer_entries(on, peer), (true, true, true), "{on}'s entries for {peer}");
    }

    let ips = start_server_pods(&c);
    for (i, ip) in ips.iter().enumerate() {
        let node = format!("n{}", i + 1);
        assert!(in_subnet(ip, &subnet_of[&node]), "s{} at {ip} outside {node}'s {}", i + 1, subnet_of[&node]);
    }
    tcp_reaches(&c, "s1", "s2", &ips[1]);
    tcp_reaches(&c, "s1", "s3", &ips[2]);
    tcp_reaches(&c, "s2", "s1", &ips[0]);
    tcp_reaches(&c, "s3", "s1", &ips[0]);
    udp_roundtrip(&c, "s1", &ips[0], "s2", &ips[1]);
    udp_roundtrip(&c, "s1", &ips[0], "s3", &ips[2]);
    udp_roundtrip(&c, "s3", &ips[2], "s1", &ips[0]);
    node_reaches(&c, "n2", "s3", &ips[2]);

    // n2's agent crashes and comes back: same lease, same pod address, still reachable both ways.
    c.stop("n2");
    c.start("n2");
    c.wait_all_ready(60);
    let again: Vec<String> = etcd_leases(&c).into_iter().map(|(s, _)| s).collect();
    assert!(again.contains(&subnet_of["n2"]) && again.len() == 3, "{again:?} vs {subnet_of:?}");
    files_agree(&c, "n2", &subnet_of["n2"]);
    assert_eq!(pod_field(&c, "s2", "{.status.podIP}"), ips[1]);
    tcp_reaches(&c, "s1", "s2", &ips[1]);
    tcp_reaches(&c, "s2", "s3", &ips[2]);
    udp_roundtrip(&c, "s2", &ips[1], "s1", &ips[0]);

    // n3 removed (stopped, its Node deleted, its lease gone as when it expires): the others drop its entries.
    c.stop("n3");
    c.kubectl(&["delete", "node", "n3"]);
    let key = format!("/kube-centos/network/subnets/{}", subnet_of["n3"].replace('/', "-"));
    c.etcdctl(&["del", &key]);
    for on in ["n1", "n2"] {
        c.eventually(30, &format!("{on} drops n3's route, neighbour and FDB entry"), || {
            peer_entries(on, "n3") == (false, false, false)
        });
        assert_eq!(peer_entries(on, if on == "n1" { "n2" } else { "n1" }), (true, true, true));
    }
    tcp_reaches(&c, "s1", "s2", &ips[1]);
}

/// host-gw with the nodes' podCIDRs (flannel's kube subnet manager): a /24 each from the API, plain routes
/// via the peers' addresses, TCP and UDP between pods across nodes, a node reaching a pod; an agent restarted
/// keeps its subnet; a node deleted takes its route along.
#[test]
fn host_gw_with_api_leases_connects_pods_across_nodes() {
    let c = Cluster::up(&["--backend", "host-gw", "--no-services"]);
    let mut subnet_of = std::collections::BTreeMap::new();
    for n in ["n1", "n2", "n3"] {
        let cidr = c.kubectl(&["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"]);
        assert!(cidr.starts_with("172.30.") && cidr.ends_with(".0/24"), "{n}: {cidr}");
        files_agree(&c, n, &cidr);
        subnet_of.insert(n.to_owned(), cidr);
    }
    let distinct: std::collections::BTreeSet<&String> = subnet_of.values().collect();
    assert_eq!(distinct.len(), 3, "{subnet_of:?}");
    let route = |on: &str, peer: &str| {
        let want = format!("{} via {} dev eth0", subnet_of[peer], c.node_ip(peer));
        c.exec(on, &["ip", "route"]).lines().any(|l| l.starts_with(&want))
    };
    for (on, peer) in [("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n2")] {
        c.eventually(20, &format!("{on}'s route to {peer}'s pods"), || route(on, peer));
    }
    assert!(c.exec_out("n1", &["ip", "link", "show", "flannel.1"]).status.code() != Some(0), "no vxlan device");

    let ips = start_server_pods(&c);
    for (i, ip) in ips.iter().enumerate() {
        let node = format!("n{}", i + 1);
        assert!(in_subnet(ip, &subnet_of[&node]), "s{} at {ip} outside {node}'s {}", i + 1, subnet_of[&node]);
    }
    tcp_reaches(&c, "s1", "s2", &ips[1]);
    tcp_reaches(&c, "s1", "s3", &ips[2]);
    tcp_reaches(&c, "s3", "s1", &ips[0]);
    udp_roundtrip(&c, "s1", &ips[0], "s2", &ips[1]);
    udp_roundtrip(&c, "s2", &ips[1], "s1", &ips[0]);
    node_reaches(&c, "n3", "s1", &ips[0]);

    c.stop("n2");
    c.start("n2");
    c.wait_all_ready(60);
    assert_eq!(c.kubectl(&["get", "node", "n2", "-o", "jsonpath={.spec.podCIDR}"]), subnet_of["n2"]);
    tcp_reaches(&c, "s1", "s2", &ips[1]);

    c.stop("n3");
    c.kubectl(&["delete", "node", "n3"]);
    for on in ["n1", "n2"] {
        c.eventually(30, &format!("{on} drops its route to n3's pods"), || !route(on, "n3"));
    }
    assert!(route("n1", "n2"), "n1 keeps its route to n2");
}

/// The other two pairings, lighter: vxlan with the nodes' podCIDRs (a deleted Node takes its route, neighbour
/// and FDB entry along on the others) and host-gw with etcd leases (flannel's JSON with BackendType host-gw,
/// plain routes via the peers' addresses); pods reach each other across nodes in both.
#[test]
fn vxlan_with_api_leases_and_host_gw_with_etcd_leases() {
    let (vx, hg) = std::thread::scope(|s| {
        let vx = s.spawn(|| Cluster::up(&["--backend", "vxlan", "--no-services"]));
        let hg = s.spawn(|| Cluster::up(&["--backend", "host-gw", "--etcd", "--no-services"]));
        // A panic in one still removes the other: its Cluster is dropped when the scope unwinds.
        (vx.join(), hg.join())
    });
    let (vx, hg) = (vx.expect("vxlan cluster up"), hg.expect("host-gw cluster up"));

    // vxlan, leases from the API.
    let cidr = |c: &Cluster, n: &str| c.kubectl(&["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"]);
    let mac = |c: &Cluster, n: &str| {
        let link = c.exec(n, &["ip", "-o", "link", "show", "flannel.1"]);
        link.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("vtep MAC").to_owned()
    };
    let n3_subnet = cidr(&vx, "n3");
    let n3_gw = n3_subnet.trim_end_matches("/24").to_owned();
    let n3_mac = mac(&vx, "n3");
    let entries = |on: &str| {
        let route = vx.exec(on, &["ip", "route"]).contains(&format!("{n3_subnet} via {n3_gw} dev flannel.1 onlink"));
        let neigh =
            vx.exec(on, &["ip", "neigh", "show", "dev", "flannel.1"]).contains(&format!("{n3_gw} lladdr {n3_mac}"));
        let fdb = vx
            .exec(on, &["bridge", "fdb", "show", "dev", "flannel.1"])
            .contains(&format!("{n3_mac} dst 192.168.77.13"));
        (route, neigh, fdb)
    };
    for on in ["n1", "n2"] {
        vx.eventually(20, &format!("{on}'s entries for n3"), || entries(on) == (true, true, true));
    }
    let ips = start_server_pods(&vx);
    for (i, ip) in ips.iter().enumerate() {
        assert!(in_subnet(ip, &cidr(&vx, &format!("n{}", i + 1))), "s{} at {ip}", i + 1);
    }
    tcp_reaches(&vx, "s1", "s3", &ips[2]);
    tcp_reaches(&vx, "s3", "s2", &ips[1]);
    udp_roundtrip(&vx, "s2", &ips[1], "s3", &ips[2]);
    vx.stop("n3");
    vx.kubectl(&["delete", "node", "n3"]);
    for on in ["n1", "n2"] {
        vx.eventually(30, &format!("{on} drops n3's entries"), || entries(on) == (false, false, false));
    }
    tcp_reaches(&vx, "s1", "s2", &ips[1]);

    // host-gw, leases in etcd.
    let leases = etcd_leases(&hg);
    assert_eq!(leases.len(), 3, "{leases:?}");
    let mut subnet_of = std::collections::BTreeMap::new();
    for (subnet, lease) in &leases {
        assert_eq!(lease["BackendType"], "host-gw", "{lease}");
        let ip = lease["PublicIP"].as_str().expect("PublicIP").to_owned();
        let node = format!("n{}", ip.rsplit('.').next().and_then(|d| d.parse::<u8>().ok()).expect("IP") - 10);
        files_agree(&hg, &node, subnet);
        subnet_of.insert(node, (subnet.clone(), ip));
    }
    for (on, peer) in [("n1", "n2"), ("n2", "n3"), ("n3", "n1")] {
        let (subnet, ip) = &subnet_of[peer];
        let want = format!("{subnet} via {ip} dev eth0");
        hg.eventually(20, &format!("{on}: {want}"), || hg.exec(on, &["ip", "route"]).contains(&want));
    }
    let ips = start_server_pods(&hg);
    for (i, ip) in ips.iter().enumerate() {
        assert!(in_subnet(ip, &subnet_of[&format!("n{}", i + 1)].0), "s{} at {ip}", i + 1);
    }
    tcp_reaches(&hg, "s2", "s3", &ips[2]);
    udp_roundtrip(&hg, "s3", &ips[2], "s1", &ips[0]);
    node_reaches(&hg, "n1", "s2", &ips[1]);
}
