//! The pod network inside the agent (issue 6), end to end: `rkube server` with its embedded agent runs inside
//! network namespaces this test makes (node namespaces joined by veths to a bridge in a "physical network"
//! namespace), with the flannel-compatible network (vxlan, host-gw; etcd leases or the node's podCIDR), and
//! kubectl reaching it from inside its namespace. Nothing touches the host's network namespace: processes are
//! started with `nsenter --net` (the host's mount namespace is kept, so `rkube agent clean` sees every mount).
//! Every namespace, process, pod and file is removed on drop, also when an assertion fails. Two-node tests run
//! on `rkube cluster` (tests/common/cluster.rs); the 3-node acceptance is tests/cluster.rs's.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

mod common;
mod pod_network_ns;
use common::cluster::Cluster;
use pod_network_ns::*;

#[test]
fn vxlan_with_etcd_leases_and_restart() {
    let mut lan = Lan::new();
    let ns = lan.node(1);
    let etcd = Etcd::start(&lan.lan.clone());
    let mut node = Node::start(&ns, 1, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);

    // The config was absent: written from the flags, in flannel's JSON.
    let cfg: serde_json::Value =
        serde_json::from_str(etcd.ctl(&["get", "--print-value-only", &format!("{PREFIX}/config")]).unwrap().trim())
            .unwrap();
    assert_eq!(cfg["Network"], "172.30.0.0/16");
    assert_eq!(cfg["SubnetLen"], 24);
    assert_eq!(cfg["Backend"]["Type"], "vxlan");

    // One lease, at flannel's key, in flannel's JSON.
    let subnet = subnet_of(&node);
    let key = format!("{PREFIX}/subnets/{}", subnet.replace('/', "-"));
    assert!(subnet.starts_with("172.30.") && subnet.ends_with(".0/24"), "{subnet}");
    let keys = etcd.ctl(&["get", "--prefix", "--keys-only", &format!("{PREFIX}/subnets")]).unwrap();
    assert_eq!(keys.split_whitespace().collect::<Vec<_>>(), [key.as_str()], "{keys}");
    let lease: serde_json::Value =
        serde_json::from_str(etcd.ctl(&["get", "--print-value-only", &key]).unwrap().trim()).unwrap();
    assert_eq!(lease["PublicIP"], node.ip.as_str());
    assert_eq!(lease["BackendType"], "vxlan");
    assert_eq!(lease["BackendData"]["VNI"], 1);

    // flannel.1: VNI 1, port 8472, MTU of the uplink minus 50, learning off, the lease's .0/32; its MAC is
    // the lease's VtepMAC.
    let f = link(&ns, "flannel.1");
    let data = &f["linkinfo"]["info_data"];
    assert_eq!(data["id"], 1, "{f}");
    assert_eq!(data["port"], 8472, "{f}");
    assert_eq!(data["learning"], false, "{f}");
    assert_eq!(f["mtu"], 1450, "{f}");
    assert_eq!(f["address"], lease["BackendData"]["VtepMAC"], "{f}");
    let addrs = sh(&["ip", "-n", &ns, "-4", "-o", "addr", "show", "flannel.1"]);
    assert!(addrs.contains(&format!("{}/32", subnet.trim_end_matches("/24"))), "{addrs}");

    // Node files agree with the lease.
    let env = std::fs::read_to_string(node.path("run/flannel/subnet.env")).unwrap();
    let gw = format!("{}1", subnet.trim_end_matches("0/24"));
    assert_eq!(
        env,
        format!("FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET={gw}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    );
    let docker = std::fs::read_to_string(node.path("run/flannel/docker")).unwrap();
    assert!(
        docker.contains(&format!("DOCKER_NETWORK_OPTIONS=\" --bip={gw}/24 --ip-masq=false --mtu=1450\"")),
        "{docker}"
    );
    let conflist: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.path("agent/cni/net.d/10-flannel.conflist")).unwrap())
            .unwrap();
    let bridge = &conflist["plugins"][0];
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], subnet.as_str());
    assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], gw.as_str());
    assert_eq!(bridge["mtu"], 1450);
    assert_eq!(bridge["ipam"]["dataDir"], node.path("agent/cni/networks").display().to_string().as_str(), "{conflist}");
    assert!(!node.path("agent/cni/net.d/10-rkube.conflist").exists(), "no node-local conflist next to flannel's");

    // FORWARD accepts the cluster network; only traffic leaving it is masqueraded.
    let filter = sh(&["nsenter", &format!("--net=/run/netns/{ns}"), "iptables", "-w", "-S", "FLANNEL-FWD"]);
    assert!(filter.contains("-A FLANNEL-FWD -s 172.30.0.0/16"), "{filter}");
    let forward = sh(&["nsenter", &format!("--net=/run/netns/{ns}"), "iptables", "-w", "-S", "FORWARD"]);
    assert!(forward.contains("-j FLANNEL-FWD"), "{forward}");
    let nat =
        sh(&["nsenter", &format!("--net=/run/netns/{ns}"), "iptables", "-w", "-t", "nat", "-S", "FLANNEL-POSTRTG"]);
    assert!(nat.contains(&format!("-A FLANNEL-POSTRTG -s {subnet} -d 172.30.0.0/16")), "{nat}");
    assert!(nat.contains("-A FLANNEL-POSTRTG -s 172.30.0.0/16 ! -d 224.0.0.0/4"), "{nat}");
    // ip_forward in the node's namespace (the host's is not touched).
    let fwd = sh(&["nsenter", &format!("--net=/run/netns/{ns}"), "cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(fwd.trim(), "1");

    // A pod gets an address from the lease and answers from the node.
    node.import_busybox();
    let ip = node.web_pod("web");
    assert!(inside(&ip, &subnet), "pod IP {ip} outside the lease {subnet}");
    reach(&node, &ns, &ip, "web");

    // A restart takes the same subnet back (same PublicIP), and the pod keeps its address and connectivity.
    node.stop();
    assert_eq!(http_get(&ns, &ip).as_deref(), Some("web"), "the pod is reachable while its agent is down");
    node.spawn();
    assert_eq!(subnet_of(&node), subnet, "a restarted node takes its subnet back");
    let keys = etcd.ctl(&["get", "--prefix", "--keys-only", &format!("{PREFIX}/subnets")]).unwrap();
    assert_eq!(keys.split_whitespace().collect::<Vec<_>>(), [key.as_str()], "{keys}");
    reach(&node, &ns, &ip, "web");
    assert_eq!(node.json(&["get", "pod", "web"])["status"]["podIP"], ip.as_str());
    drop(node);
    drop(etcd);
}

#[test]
fn kube_subnet_manager_uses_the_node_pod_cidr() {
    let mut lan = Lan::new();
    let ns = lan.node(1);
    let node = Node::start(&ns, 1, &["--flannel-backend", "host-gw"]);
    let n = node.json(&["get", "node", "n1"]);
    let pod_cidr = n["spec"]["podCIDR"].as_str().expect("podCIDR").to_owned();
    assert_eq!(subnet_of(&node), pod_cidr, "the kube subnet manager leases the node's spec.podCIDR");
    let a = &n["metadata"]["annotations"];
    assert_eq!(a["flannel.alpha.coreos.com/backend-type"], "host-gw", "{a}");
    assert_eq!(a["flannel.alpha.coreos.com/public-ip"], node.ip.as_str(), "{a}");
    assert_eq!(a["flannel.alpha.coreos.com/kube-subnet-manager"], "true", "{a}");
    assert_eq!(a["flannel.alpha.coreos.com/backend-data"], "null", "{a}");
    // host-gw: no vxlan device; pods get the uplink's MTU.
    let links = sh(&["ip", "-n", &ns, "-o", "link"]);
    assert!(!links.contains("flannel.1"), "{links}");
    let env = std::fs::read_to_string(node.path("run/flannel/subnet.env")).unwrap();
    assert!(env.contains("FLANNEL_MTU=1500"), "{env}");
    node.import_busybox();
    let ip = node.web_pod("web");
    assert!(inside(&ip, &pod_cidr), "pod IP {ip} outside the node's podCIDR {pod_cidr}");
    reach(&node, &ns, &ip, "web");
}

#[test]
fn kube_subnet_manager_refuses_an_exhausted_network() {
    let mut lan = Lan::new();
    let ns = lan.node(1);
    let mut node = Node::start(
        &ns,
        1,
        &["--flannel-backend", "host-gw", "--cluster-cidr", "10.10.0.0/26", "--node-cidr-mask-size", "28"],
    );
    assert_eq!(subnet_of(&node), "10.10.0.0/28");
    // Three more nodes take the other three /28 ranges.
    for n in ["gone-a", "gone-b", "gone-c"] {
        node.apply(&format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {n}}}\n"));
    }
    poll(30, "every range assigned", || {
        let nodes = node.json(&["get", "nodes"]);
        let items = nodes["items"].as_array().cloned().unwrap_or_default();
        items.len() == 4 && items.iter().all(|n| n["spec"]["podCIDR"].is_string())
    });
    // A fifth node (the same host under a new name) gets no range: refused, naming the network and the fix.
    let log = node.restart_refused("--node-name", "n5");
    assert!(
        log.contains("node n5 has no spec.podCIDR: network 10.10.0.0/26 is exhausted: all 4 /28 node ranges"),
        "{log}"
    );
    assert!(log.contains("widen --cluster-cidr"), "{log}");
}

#[test]
fn bad_flags_are_refused_at_start() {
    let mut lan = Lan::new();
    let ns = lan.node(1);
    let log = Node::refused(&ns, 1, &["--cluster-cidr", "172.30.0.0/24", "--node-cidr-mask-size", "24"]);
    assert!(log.contains("--cluster-cidr 172.30.0.0/24 is too small for --node-cidr-mask-size 24"), "{log}");
    let log = Node::refused(&ns, 1, &["--flannel-backend", "udp", "--flannel-etcd-prefix", "nope"]);
    assert!(log.contains("--flannel-backend \"udp\" is not a pod network backend"), "{log}");
    assert!(log.contains("--flannel-etcd-prefix \"nope\" must be an absolute etcd key"), "{log}");
    let log = Node::refused(&ns, 1, &["--flannel-iface", "eth9"]);
    assert!(log.contains("--flannel-iface eth9: no such interface; use one of: eth0, lo"), "{log}");
    // An uplink whose MTU leaves no room for vxlan's 50 bytes.
    sh(&["ip", "-n", &ns, "link", "set", "eth0", "mtu", "100"]);
    let log = Node::refused(&ns, 1, &[]);
    assert!(log.contains("uplink eth0 MTU 100 is too small for vxlan") && log.contains("host-gw"), "{log}");
    assert!(!sh(&["ip", "-n", &ns, "-o", "link"]).contains("flannel.1"), "a refused node leaves no flannel.1");
}

#[test]
fn bad_network_config_in_etcd_is_refused_and_running_nodes_keep_their_network() {
    let mut lan = Lan::new();
    let n1 = lan.node(1);
    let n2 = lan.node(2);
    let etcd = Etcd::start(&lan.lan.clone());
    // A small network: three /28 subnets.
    etcd.ctl(&["put", &format!("{PREFIX}/config"), r#"{"Network":"10.10.0.0/26","SubnetLen":28}"#]).unwrap();
    let node = Node::start(&n1, 1, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);
    let subnet = subnet_of(&node);
    assert_eq!(subnet, "10.10.0.16/28", "etcd's config wins over the flags");
    node.import_busybox();
    let ip = node.web_pod("web");
    assert!(inside(&ip, &subnet), "{ip} in {subnet}");

    // The other two subnets are held by nodes elsewhere: the network is exhausted for node 2.
    for (s, peer) in [("10.10.0.32-28", "192.168.77.50"), ("10.10.0.48-28", "192.168.77.51")] {
        let v = format!(r#"{{"PublicIP":"{peer}","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}}"#);
        etcd.ctl(&["put", &format!("{PREFIX}/subnets/{s}"), &v]).unwrap();
    }
    let log = Node::refused(&n2, 2, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);
    assert!(log.contains("network 10.10.0.0/26 is exhausted: all 3 /28 subnets"), "{log}");

    // A malformed config: refused with the key and the fix.
    etcd.ctl(&["put", &format!("{PREFIX}/config"), r#"{"Network":"10.10.0.0/26","SubnetLen":}"#]).unwrap();
    let log = Node::refused(&n2, 2, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);
    assert!(log.contains(&format!("{PREFIX}/config in etcd: network config is not valid JSON")), "{log}");
    assert!(log.contains("etcdctl put"), "{log}");
    // SubnetLen out of range, and a Network too small for its SubnetLen.
    etcd.ctl(&["put", &format!("{PREFIX}/config"), r#"{"Network":"10.10.0.0/26","SubnetLen":31}"#]).unwrap();
    let log = Node::refused(&n2, 2, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);
    assert!(log.contains("SubnetLen 31 is out of range"), "{log}");
    etcd.ctl(&["put", &format!("{PREFIX}/config"), r#"{"Network":"10.10.0.0/26","SubnetLen":26}"#]).unwrap();
    let log = Node::refused(&n2, 2, &["--flannel-etcd-endpoints", ETCD, "--flannel-etcd-prefix", PREFIX]);
    assert!(log.contains("Network 10.10.0.0/26 is too small for SubnetLen 26"), "{log}");

    // Node 1 kept its network throughout.
    assert!(!sh(&["ip", "-n", &n2, "-o", "link"]).contains("flannel.1"), "refused node 2 made no flannel.1");
    assert_eq!(http_get(&n1, &ip).as_deref(), Some("web"));
    assert!(etcd.ctl(&["get", &format!("{PREFIX}/subnets/10.10.0.16-28")]).unwrap().contains("192.168.77.11"));
}

/// An httpd pod answering its own name, pinned to `node`.
fn pinned_web(c: &Cluster, name: &str, node: &str) {
    let script = format!("mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: \"{IMAGE}\"\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {script:?}]\n"
    ));
}

fn running_ip(c: &Cluster, name: &str) -> String {
    let mut ip = String::new();
    c.eventually(60, &format!("pod {name} running with an IP"), || {
        let p = c.json(&["get", "pod", name]);
        ip = p["status"]["podIP"].as_str().unwrap_or_default().to_owned();
        p["status"]["phase"] == "Running" && !ip.is_empty()
    });
    ip
}

/// Node `node` reaches `ip` (a pod elsewhere) and gets `want`.
fn node_reaches(c: &Cluster, node: &str, ip: &str, want: &str) -> bool {
    let out = c.exec_out(node, &["curl", "-s", "-m", "3", "--noproxy", "*", &format!("http://{ip}:8080/")]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == want
}

/// Pod `from` reaches `ip` over TCP and gets `want` (busybox wget inside the pod).
fn pod_reaches(c: &Cluster, from: &str, ip: &str, want: &str) -> bool {
    let out = c.kubectl_out(&["exec", from, "--", "timeout", "5", "wget", "-qO-", &format!("http://{ip}:8080/")]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == want
}

/// Each pod reaches the other by TCP, and each node the pod on the other node.
fn assert_cross_traffic(c: &Cluster, pods: [(&str, &str, &str); 2]) {
    for (i, (from, from_node, _)) in pods.iter().enumerate() {
        let (to, _, to_ip) = pods[1 - i];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !node_reaches(c, from_node, to_ip, to) {
            if Instant::now() > deadline {
                let out = c.exec_out(from_node, &["curl", "-sS", "-m", "3", &format!("http://{to_ip}:8080/")]);
                panic!(
                    "node {from_node} does not reach {to} at {to_ip}: {}\n{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    c.exec(from_node, &["ip", "route"]),
                    c.exec(from_node, &["ip", "neigh"]),
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pod_reaches(c, from, to_ip, to) {
            if Instant::now() > deadline {
                let out = c.kubectl_out(&[
                    "exec",
                    from,
                    "--",
                    "timeout",
                    "5",
                    "wget",
                    "-qO-",
                    &format!("http://{to_ip}:8080/"),
                ]);
                panic!(
                    "pod {from} does not reach {to} at {to_ip}: {} {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn two_nodes_vxlan_with_api_leases() {
    let c = Cluster::up(&["--nodes", "2", "--backend", "vxlan", "--no-services"]);
    c.load_busybox(IMAGE);
    // n2 is a separate `rkube agent` with a node identity: its flannel annotations were accepted.
    let n2 = c.json(&["get", "node", "n2"]);
    let a = &n2["metadata"]["annotations"];
    assert_eq!(a["flannel.alpha.coreos.com/public-ip"], c.node_ip("n2").as_str(), "{a}");
    assert_eq!(a["flannel.alpha.coreos.com/backend-type"], "vxlan", "{a}");
    let data: serde_json::Value =
        serde_json::from_str(a["flannel.alpha.coreos.com/backend-data"].as_str().expect("backend-data")).unwrap();
    assert_eq!(data["VNI"], 1, "{a}");
    let cidr1 = c.json(&["get", "node", "n1"])["spec"]["podCIDR"].as_str().expect("n1 podCIDR").to_owned();
    let cidr2 = n2["spec"]["podCIDR"].as_str().expect("n2 podCIDR").to_owned();
    assert_ne!(cidr1, cidr2);

    // Each node has a route, a neighbour and an FDB entry for the other (the watch saw the peer).
    let net2 = cidr2.trim_end_matches("/24");
    c.eventually(30, "n1 routes n2's subnet over flannel.1", || {
        c.exec("n1", &["ip", "route"]).contains(&format!("{cidr2} via {net2} dev flannel.1 onlink"))
    });
    let vtep2 = data["VtepMAC"].as_str().expect("VtepMAC");
    assert!(c.exec("n1", &["ip", "neigh", "show", "dev", "flannel.1"]).contains(vtep2));
    let fdb = c.exec("n1", &["bridge", "fdb", "show", "dev", "flannel.1"]);
    assert!(fdb.contains(&format!("{vtep2} dst {}", c.node_ip("n2"))), "{fdb}");

    pinned_web(&c, "web-n1", "n1");
    pinned_web(&c, "web-n2", "n2");
    let ip1 = running_ip(&c, "web-n1");
    let ip2 = running_ip(&c, "web-n2");
    assert!(inside(&ip1, &cidr1) && inside(&ip2, &cidr2), "{ip1} in {cidr1}, {ip2} in {cidr2}");
    assert_cross_traffic(&c, [("web-n1", "n1", &ip1), ("web-n2", "n2", &ip2)]);

    // A crashed and restarted agent keeps its podCIDR, and its pods stay reachable.
    c.stop("n2");
    assert!(node_reaches(&c, "n1", &ip2, "web-n2"), "n2's pod is reachable while its agent is down");
    c.start("n2");
    assert_eq!(c.json(&["get", "node", "n2"])["spec"]["podCIDR"], cidr2.as_str());
    assert_cross_traffic(&c, [("web-n1", "n1", &ip1), ("web-n2", "n2", &ip2)]);

    // A node removed from the cluster: the others drop its route, neighbour and FDB entry.
    c.stop("n2");
    c.kubectl(&["delete", "node", "n2"]);
    c.eventually(30, "n1 forgets n2", || {
        !c.exec("n1", &["ip", "route"]).contains(&cidr2)
            && !c.exec("n1", &["ip", "neigh", "show", "dev", "flannel.1"]).contains(vtep2)
            && !c.exec("n1", &["bridge", "fdb", "show", "dev", "flannel.1"]).contains(vtep2)
    });
    c.down();
}

#[test]
fn two_nodes_host_gw_with_etcd_leases() {
    let c = Cluster::up(&["--nodes", "2", "--backend", "host-gw", "--etcd", "--no-services"]);
    c.load_busybox(IMAGE);
    let keys = c.etcdctl(&["get", "--prefix", "--keys-only", "/kube-centos/network/subnets"]);
    let keys: Vec<&str> = keys.split_whitespace().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let mut subnets = std::collections::BTreeMap::new();
    for k in &keys {
        let v: serde_json::Value = serde_json::from_str(c.etcdctl(&["get", "--print-value-only", k]).trim()).unwrap();
        assert_eq!(v["BackendType"], "host-gw", "{v}");
        let ip = v["PublicIP"].as_str().expect("PublicIP").to_owned();
        let subnet = k.rsplit('/').next().expect("key").replace('-', "/");
        subnets.insert(ip, subnet);
    }
    let sub1 = subnets[&c.node_ip("n1")].clone();
    let sub2 = subnets[&c.node_ip("n2")].clone();
    let env2 = std::fs::read_to_string(c.node_dir("n2").join("flannel/subnet.env")).expect("n2 subnet.env");
    assert!(env2.contains(&format!("FLANNEL_SUBNET={}1/24", sub2.trim_end_matches("0/24"))), "{env2}");
    c.eventually(30, "n1 routes n2's subnet via n2", || {
        c.exec("n1", &["ip", "route"]).contains(&format!("{sub2} via {} dev eth0", c.node_ip("n2")))
    });

    pinned_web(&c, "web-n1", "n1");
    pinned_web(&c, "web-n2", "n2");
    let ip1 = running_ip(&c, "web-n1");
    let ip2 = running_ip(&c, "web-n2");
    assert!(inside(&ip1, &sub1) && inside(&ip2, &sub2), "pods use the etcd leases: {ip1} in {sub1}, {ip2} in {sub2}");
    assert_cross_traffic(&c, [("web-n1", "n1", &ip1), ("web-n2", "n2", &ip2)]);

    // A restart takes the same lease back from etcd.
    c.stop("n2");
    c.start("n2");
    let again = std::fs::read_to_string(c.node_dir("n2").join("flannel/subnet.env")).expect("n2 subnet.env");
    assert_eq!(again, env2);
    let keys_after = c.etcdctl(&["get", "--prefix", "--keys-only", "/kube-centos/network/subnets"]);
    assert_eq!(keys_after.split_whitespace().collect::<Vec<_>>(), keys);
    assert_cross_traffic(&c, [("web-n1", "n1", &ip1), ("web-n2", "n2", &ip2)]);
    c.down();
}
