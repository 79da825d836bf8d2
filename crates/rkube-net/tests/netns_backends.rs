//! The backends for real, in network namespaces of the test's own: a "physical" bridge namespace with a real
#![allow(clippy::unwrap_used)]
//! etcd, node namespaces joined to it by veths, `rkube_net::run` on a thread inside each node namespace.
//! Nothing is done in the host namespace except creating and deleting the namespaces.

mod common;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Etcd, Netns, eventually, in_ns, ok, physical_network, sh, spawn_in_ns, tcp_reach};
use rkube_net::files::NodeFiles;
use rkube_net::subnet::EtcdSubnetManager;
use rkube_net::uplink::UplinkChoice;
use rkube_net::{NetOptions, NodeNetwork};
use tokio::sync::oneshot;

const PREFIX: &str = "/kube-centos/network";

struct Node {
    ns: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<NodeNetwork, String>>>,
    net: NodeNetwork,
    dir: tempfile::TempDir,
}

impl Node {
    fn start(ns: &str, endpoint: &str, cleanup: bool, dir: Option<tempfile::TempDir>) -> Node {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let opts = NetOptions {
            uplink: UplinkChoice { iface: Some("eth0".into()), iface_regex: None },
            files: NodeFiles {
                cni_conflist: Some(dir.path().join("net.d/10-flannel.conflist")),
                ipam_data_dir: Some(dir.path().join("ipam")),
                subnet_env: Some(dir.path().join("subnet.env")),
                docker_opts: Some(dir.path().join("docker")),
            },
            iptables: true,
            sysctls: true,
            cleanup_on_stop: cleanup,
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let ep = endpoint.to_string();
        let thread = spawn_in_ns(ns, move || async move {
            let c = etcd_client::Client::connect([ep.as_str()], None).await.map_err(|e| e.to_string())?;
            let m = Arc::new(EtcdSubnetManager::new(c, PREFIX));
            rkube_net::run(
                opts,
                m,
                async move {
                    let _ = stop_rx.await;
                },
                ready_tx,
            )
            .await
            .map_err(|e| e.to_string())
        });
        let net = match ready_rx.blocking_recv() {
            Ok(net) => net,
            Err(_) => panic!("node {ns} failed: {:?}", thread.join()),
        };
        Node { ns: ns.to_string(), stop: Some(stop_tx), thread: Some(thread), net, dir }
    }

    fn stop(mut self) -> (NodeNetwork, tempfile::TempDir) {
        let _ = self.stop.take().unwrap().send(());
        let net = self.thread.take().unwrap().join().unwrap().unwrap();
        (net, std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ipn(ns: &str, args: &[&str]) -> String {
    let mut a = vec!["ip", "-n", ns];
    a.extend_from_slice(args);
    sh(&a)
}

/// Gives node namespace `ns` a "pod" address `<subnet>.5` on a bridge (this kernel has no dummy driver).
fn add_pod_address(ns: &str, net: &NodeNetwork) -> String {
    let ip = net.lease.subnet.nth(5).to_string();
    ipn(ns, &["link", "add", "pod0", "type", "bridge"]);
    ipn(ns, &["addr", "add", &format!("{ip}/24"), "dev", "pod0"]);
    ipn(ns, &["link", "set", "pod0", "up"]);
    ip
}

fn start_etcd(phys: &str, backend: &str) -> Etcd {
    let etcd = Etcd::start(Some(phys), "10.99.0.100");
    let cfg = format!(r#"{{"Network":"172.30.0.0/16","SubnetLen":24,"Backend":{{"Type":"{backend}"}}}}"#);
    etcd.etcdctl(&["put", &format!("{PREFIX}/config"), &cfg]).unwrap();
    etcd
}

#[test]
fn vxlan_three_nodes_reach_each_other_restart_and_peer_removal() {
    let mut ns = Netns::new();
    let (phys, names) = physical_network(&mut ns, 3);
    let etcd = start_etcd(&phys, "vxlan");
    // Node 1 keeps its network on stop (as a restarting agent does); the others clean up.
    let mut nodes: Vec<Node> =
        names.iter().enumerate().map(|(i, n)| Node::start(n, &etcd.endpoint, i != 0, None)).collect();
    let subnets: Vec<_> = nodes.iter().map(|n| n.net.lease.subnet).collect();
    assert!(subnets[0] != subnets[1] && subnets[1] != subnets[2] && subnets[0] != subnets[2], "{subnets:?}");
    assert_eq!(nodes[0].net.mtu, 1450);
    assert!(nodes[0].net.warnings.is_empty(), "{:?}", nodes[0].net.warnings);

    // flannel.1 as flannel makes it.
    let dev = ipn(&names[0], &["-d", "link", "show", "flannel.1"]);
    assert!(dev.contains("mtu 1450") && dev.contains("vxlan id 1") && dev.contains("local 10.99.0.1"), "{dev}");
    assert!(dev.contains("dstport 8472") && dev.contains("nolearning"), "{dev}");
    let addr = ipn(&names[0], &["addr", "show", "flannel.1"]);
    assert!(addr.contains(&format!("inet {}/32", subnets[0].addr())), "{addr}");

    let pods: Vec<String> = nodes.iter().map(|n| add_pod_address(&n.ns, &n.net)).collect();
    let mac = |i: usize| nodes[i].net.lease.attrs.vxlan().unwrap().vtep_mac;
    for (i, n) in names.iter().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            let want = format!("{} via {} dev flannel.1 onlink", subnets[j], subnets[j].addr());
            eventually(Duration::from_secs(10), &format!("{n} has {want}"), || {
                ipn(n, &["route", "show"]).contains(&want)
            });
            let neigh = ipn(n, &["neigh", "show", "dev", "flannel.1"]);
            assert!(neigh.contains(&format!("{} lladdr {} PERMANENT", subnets[j].addr(), mac(j))), "{neigh}");
            let fdb = sh(&["bridge", "-n", n, "fdb", "show", "dev", "flannel.1"]);
            assert!(fdb.contains(&format!("{} dst 10.99.0.{} self permanent", mac(j), j + 1)), "{fdb}");
            assert!(tcp_reach(n, &names[j], &pods[j]), "{n} cannot reach {} over vxlan", pods[j]);
        }
    }

    // Node side files agree with the lease.
    let env = std::fs::read_to_string(nodes[1].dir.path().join("subnet.env")).unwrap();
    assert!(
        env.contains(&format!("FLANNEL_SUBNET={}/24", subnets[1].nth(1))) && env.contains("FLANNEL_MTU=1450"),
        "{env}"
    );
    let docker = std::fs::read_to_string(nodes[1].dir.path().join("docker")).unwrap();
    assert!(
        docker.contains(&format!(
            "DOCKER_NETWORK_OPTIONS=\" --bip={}/24 --ip-masq=false --mtu=1450\"",
            subnets[1].nth(1)
        ))
    );
    let conflist = std::fs::read_to_string(nodes[1].dir.path().join("net.d/10-flannel.conflist")).unwrap();
    assert!(conflist.contains(&format!("\"subnet\": \"{}\"", subnets[1])), "{conflist}");
    // iptables rules, inside the node namespace only.
    let nat = sh(&["ip", "netns", "exec", &names[0], "iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"]);
    assert!(nat.contains("MASQUERADE"), "{nat}");
    let fwd = sh(&["ip", "netns", "exec", &names[0], "iptables", "-S", "FORWARD"]);
    assert!(fwd.contains("-j FLANNEL-FWD"), "{fwd}");
    // etcd shows three leases in flannel's JSON.
    let leases = etcd.etcdctl(&["get", "--prefix", &format!("{PREFIX}/subnets"), "--print-value-only"]).unwrap();
    assert_eq!(leases.matches(r#""BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"#).count(), 3, "{leases}");

    // Node 1 stops without cleanup (as a restarting agent does): its routes stay.
    let mut n0 = nodes.remove(0);
    let old = n0.net.clone();
    let ns0 = n0.ns.clone();
    let _ = n0.stop.take().map(|s| s.send(()));
    let _ = n0.thread.take().map(|t| t.join());

    // Meanwhile node 3 leaves: its lease is deleted; node 2 drops its route, neighbour and FDB entry.
    let n2 = nodes.pop().unwrap();
    let gone_mac = mac_of(&n2.net);
    n2.stop();
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/{}", subnets[2].key())]).unwrap();
    let gone_route = format!("{} via", subnets[2]);
    eventually(Duration::from_secs(10), &format!("{} drops the route to {}", names[1], subnets[2]), || {
        !ipn(&names[1], &["route", "show"]).contains(&gone_route)
    });
    assert!(!ipn(&names[1], &["neigh", "show", "dev", "flannel.1"]).contains(&subnets[2].addr().to_string()));
    assert!(!sh(&["bridge", "-n", &names[1], "fdb", "show", "dev", "flannel.1"]).contains(&gone_mac));
    assert!(ipn(&ns0, &["route", "show"]).contains(&gone_route), "a stopped node keeps its routes");
    assert!(sh(&["bridge", "-n", &ns0, "fdb", "show", "dev", "flannel.1"]).contains(&gone_mac));
    // Node 3 cleaned up after itself on stop (cleanup_on_stop).
    assert!(!ok(&["ip", "-n", &names[2], "link", "show", "flannel.1"]));
    assert!(!ok(&["ip", "netns", "exec", &names[2], "iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"]));

    // Node 1 comes back: same subnet, same VtepMAC (flannel.1 reused), connectivity kept, and the stale route
    // to node 3, which left while it was down, is removed.
    let restarted = Node::start(&ns0, &etcd.endpoint, true, None);
    drop(n0);
    assert_eq!(restarted.net.lease.subnet, old.lease.subnet);
    assert_eq!(restarted.net.lease.attrs, old.lease.attrs, "same VtepMAC after a restart");
    eventually(Duration::from_secs(10), "the restarted node drops the stale route", || {
        !ipn(&ns0, &["route", "show"]).contains(&gone_route)
    });
    assert!(!ipn(&ns0, &["neigh", "show", "dev", "flannel.1"]).contains(&subnets[2].addr().to_string()));
    let fdb = sh(&["bridge", "-n", &ns0, "fdb", "show", "dev", "flannel.1"]);
    assert!(!fdb.contains(&gone_mac) && fdb.contains(&mac_of(&nodes[0].net)), "{fdb}");
    assert!(tcp_reach(&ns0, &names[1], &pods[1]));
    assert!(tcp_reach(&names[1], &ns0, &pods[0]), "the remaining nodes still reach each other");
    drop(restarted);
}

fn mac_of(n: &NodeNetwork) -> String {
    n.lease.attrs.vxlan().unwrap().vtep_mac
}

#[test]
fn host_gw_routes_via_peers_and_refuses_off_link_peers() {
    let mut ns = Netns::new();
    let (phys, names) = physical_network(&mut ns, 2);
    let etcd = start_etcd(&phys, "host-gw");
    let nodes: Vec<Node> = names.iter().map(|n| Node::start(n, &etcd.endpoint, true, None)).collect();
    assert_eq!(nodes[0].net.mtu, 1500);
    let pods: Vec<String> = nodes.iter().map(|n| add_pod_address(&n.ns, &n.net)).collect();
    for (i, j) in [(0, 1), (1, 0)] {
        let want = format!("{} via 10.99.0.{} dev eth0", nodes[j].net.lease.subnet, j + 1);
        eventually(Duration::from_secs(10), &format!("{} has {want}", names[i]), || {
            ipn(&names[i], &["route", "show"]).contains(&want)
        });
        assert!(tcp_reach(&names[i], &names[j], &pods[j]), "{} cannot reach {} over host-gw", names[i], pods[j]);
    }
    assert!(!ok(&["ip", "-n", &names[0], "link", "show", "flannel.1"]), "host-gw makes no vxlan device");

    // A peer that is not on the uplink's network is refused, with the reason and the fix.
    let err = in_ns(&names[0], || async {
        let h = rkube_net::nl::connect().unwrap();
        let up = rkube_net::uplink::choose(&h, &UplinkChoice { iface: Some("10.99.0.1".into()), iface_regex: None })
            .await
            .unwrap();
        let b = rkube_net::backend::Backend::new(h, up, &rkube_net::config::Backend::HostGw).await.unwrap();
        let mut peer = rkube_net::lease::Lease {
            subnet: "172.30.200.0/24".parse().unwrap(),
            attrs: b.lease_attrs(),
            expiration: None,
        };
        peer.attrs.public_ip = "192.0.2.9".parse().unwrap();
        b.add_peer(&peer).await.unwrap_err().to_string()
    });
    assert!(
        err.contains("PublicIP 192.0.2.9 is not on uplink eth0's network 10.99.0.0/24")
            && err.contains("use the vxlan backend"),
        "{err}"
    );
    assert!(!ipn(&names[0], &["route", "show"]).contains("172.30.200.0"));
    for n in nodes {
        n.stop();
    }
    for n in &names {
        let routes = ipn(n, &["route", "show"]);
        assert!(!routes.contains("via 10.99.0."), "host-gw routes removed on cleanup in {n}: {routes}");
    }
}

#[test]
fn missing_uplink_and_small_mtu_are_refused_with_the_fix() {
    let mut ns = Netns::new();
    let (_phys, names) = physical_network(&mut ns, 1);
    let n = names[0].clone();
    let (missing, regex, small) = in_ns(&n, || async {
        let h = rkube_net::nl::connect().unwrap();
        let missing = rkube_net::uplink::choose(&h, &UplinkChoice { iface: Some("eth4".into()), iface_regex: None })
            .await
            .unwrap_err()
            .to_string();
        let regex = rkube_net::uplink::choose(&h, &UplinkChoice { iface: None, iface_regex: Some("^wlan".into()) })
            .await
            .unwrap_err()
            .to_string();
        let by_re = rkube_net::uplink::choose(&h, &UplinkChoice { iface: None, iface_regex: Some("^eth".into()) })
            .await
            .unwrap();
        assert_eq!(by_re.ip.to_string(), "10.99.0.1");
        let mut up = by_re;
        up.mtu = 100;
        let small =
            match rkube_net::backend::Backend::new(h, up, &rkube_net::config::Backend::Vxlan { vni: 1, port: 8472 })
                .await
            {
                Err(e) => e.to_string(),
                Ok(_) => "accepted".into(),
            };
        (missing, regex, small)
    });
    assert!(
        missing.contains("--flannel-iface eth4: no such interface; use one of:") && missing.contains("eth0"),
        "{missing}"
    );
    assert!(regex.contains("--flannel-iface-regex \"^wlan\" matches no interface"), "{regex}");
    assert!(small.contains("uplink eth0 MTU 100 is too small for vxlan, which needs at least 118"), "{small}");
    assert!(!ok(&["ip", "-n", &n, "link", "show", "flannel.1"]));
    // No default route in a fresh namespace: the error says to pass --iface.
    let none = in_ns(&n, || async {
        let h = rkube_net::nl::connect().unwrap();
        rkube_net::uplink::choose(&h, &UplinkChoice::default()).await.unwrap_err().to_string()
    });
    assert!(none.contains("no default route") && none.contains("--flannel-iface"), "{none}");
}
