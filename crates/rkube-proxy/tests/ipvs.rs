//! ipvs mode against the real kernel, inside network namespaces these tests create and remove (root only;
//! the host namespace is never touched). This VM's kernel has no ip_vs and no dummy driver, so what can be
//! real here is: the IPVS family lookup failing with the message naming ip_vs, `kube-ipvs0` creation failing
//! with the message naming dummy, address changes on an existing `kube-ipvs0` (a veth the test makes under
//! that name), and the ipvs-mode iptables rules written and removed by real iptables.
//!
//! Netlink sockets belong to the namespace of the thread that opens them, so the netlink test re-runs this
//! test binary under `ip netns exec` (marked by an environment variable) and checks that run's outcome.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use rkube_proxy::ipvs::wire::Reply;
use rkube_proxy::ipvs::{self, DummyDevice, GenlSocket, Kernel, NetlinkSocket, ServiceDevice};
use rkube_proxy::model::{Endpoint, Protocol, ProxyState, ServicePort, ServicePortName};
use rkube_proxy::{Exec, RuleOptions};

const CHILD: &str = "RKUBE_IPVS_TEST_IN_NETNS";

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rkp-ipvs-{tag}-{}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    fn run(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    fn exec(&self) -> Exec {
        Exec { prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.0.clone()] }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn netlink_in_a_fresh_namespace_names_the_missing_modules() {
    if std::env::var_os(CHILD).is_some() {
        return in_namespace();
    }
    let ns = Netns::new("nl");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "netlink_in_a_fresh_namespace_names_the_missing_modules", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the in-namespace half failed:\n{log}");
    assert!(log.contains("1 passed"), "the in-namespace half did not run:\n{log}");
}

/// Runs inside the namespace (a fresh tokio runtime: every socket opens here).
fn in_namespace() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // The socket and reply reader against the real controller: a family that exists resolves (nlctrl is
        // the controller itself, id 0x10), answered by its data message and then the acknowledgement.
        let mut sock = NetlinkSocket::open().unwrap();
        let replies = sock.request(ipvs::genl::get_family("nlctrl", 7)).await.unwrap();
        let id = replies.iter().find_map(|r| match r {
            Reply::Data { attrs, .. } => ipvs::wire::family_id(attrs),
            _ => None,
        });
        assert_eq!(id, Some(0x10), "{replies:?}");
        assert_eq!(replies.last(), Some(&Reply::Ack { seq: 7 }), "{replies:?}");
        assert!(replies.iter().all(|r| r.seq() == 7));

        // The real kernel's controller has no "IPVS" family: the message names ip_vs.
        let err = Kernel::open(NetlinkSocket::open().unwrap()).await.expect_err("no ip_vs here").to_string();
        eprintln!("family lookup: {err}");
        assert!(err.contains("can't use the IPVS proxier") && err.contains("modprobe -- ip_vs"), "{err}");
        let err = ipvs::open("rr", RuleOptions::default(), Exec::default()).await.expect_err("no ip_vs").to_string();
        assert!(err.contains("ip_vs"), "{err}");

        // No dummy driver: creating kube-ipvs0 fails naming the module.
        let err = DummyDevice::ensure().await.expect_err("no dummy driver here").to_string();
        eprintln!("kube-ipvs0: {err}");
        assert!(err.contains("module dummy") && err.contains("modprobe -- dummy"), "{err}");

        // An existing kube-ipvs0 (a veth stands in for the dummy link this kernel cannot make) is adopted and
        // gets /32 addresses added and removed, and is left down.
        sh(&["ip", "link", "add", "kube-ipvs0", "type", "veth", "peer", "name", "kipvs-peer"]);
        let mut dev = DummyDevice::ensure().await.expect("the existing device is used");
        for a in ["10.96.0.10", "10.96.0.20", "10.96.0.20"] {
            dev.add(a.parse().unwrap()).await.unwrap();
        }
        let shown = sh(&["ip", "-o", "-4", "addr", "show", "dev", "kube-ipvs0"]);
        assert!(shown.contains("10.96.0.10/32") && shown.contains("10.96.0.20/32"), "{shown}");
        let addrs: Vec<String> = dev.addresses().await.unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, vec!["10.96.0.10", "10.96.0.20"]);
        dev.del("10.96.0.20".parse().unwrap()).await.unwrap();
        dev.del("10.96.0.20".parse().unwrap()).await.unwrap();
        let shown = sh(&["ip", "-o", "-4", "addr", "show", "dev", "kube-ipvs0"]);
        assert!(shown.contains("10.96.0.10/32") && !shown.contains("10.96.0.20"), "{shown}");
        let link = sh(&["ip", "-o", "link", "show", "kube-ipvs0"]);
        assert!(link.contains("state DOWN"), "kube-ipvs0 is kept down: {link}");
    });
}

fn spn(name: &str) -> ServicePortName {
    ServicePortName { namespace: "default".into(), name: name.into(), port: String::new(), protocol: Protocol::Tcp }
}

fn state() -> ProxyState {
    let mut st = ProxyState::default();
    let mut web = ServicePort {
        cluster_ip: "10.96.0.10".parse().unwrap(),
        port: 80,
        node_port: 30080,
        external_ips: vec!["192.0.2.7".parse().unwrap()],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        affinity_seconds: None,
        internal_local: false,
        external_local: false,
    };
    st.services.insert(spn("web"), web.clone());
    let ep = |ip: &str, local| Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        ready: true,
        serving: true,
        terminating: false,
        local,
    };
    st.endpoints.insert(spn("web"), vec![ep("10.244.1.2", true), ep("10.244.2.3", false)]);
    web.cluster_ip = "10.96.0.11".parse().unwrap();
    web.node_port = 0;
    web.external_ips.clear();
    st.services.insert(spn("db"), web);
    st
}

fn saved(ns: &Netns) -> String {
    ns.run(&["iptables-save"]).lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn ipvs_mode_iptables_rules_are_written_and_removed_by_real_iptables() {
    let ns = Netns::new("ipt");
    let opts = RuleOptions { cluster_cidr: Some("10.244.0.0/16".into()), ..RuleOptions::default() };
    let rules = ipvs::rules::render(&state(), &opts);
    ipvs::rules::apply(&ns.exec(), &rules).await.expect("iptables-restore in the namespace");
    let got = saved(&ns);
    for want in [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m tcp --dport 80 -j KUBE-MARK-MASQ",
        "-A KUBE-SERVICES -d 192.0.2.7/32 -p tcp -m comment --comment \"Kubernetes service external ip + port for masquerade and filter purpose\" -m tcp --dport 80 -j KUBE-MARK-MASQ",
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
        "-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m tcp --dport 80 -j ACCEPT",
        "-A KUBE-NODE-PORT -p tcp -m tcp --dport 30080 -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" -j KUBE-MARK-MASQ",
        "-A KUBE-POSTROUTING -s 10.244.1.2/32 -d 10.244.1.2/32 -p tcp -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m tcp --dport 8080 -j MASQUERADE",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
    // Only the local endpoint hairpins.
    assert!(!got.contains("-s 10.244.2.3/32 -d 10.244.2.3/32"), "{got}");

    // Re-applying replaces the chains' contents and adds no second jump; --masquerade-all drops the source test.
    let all = RuleOptions { masquerade_all: true, ..opts };
    ipvs::rules::apply(&ns.exec(), &ipvs::rules::render(&state(), &all)).await.unwrap();
    let got = saved(&ns);
    assert_eq!(got.matches("-j KUBE-POSTROUTING").count(), 1, "{got}");
    assert!(!got.contains("! -s 10.244.0.0/16"), "{got}");
    assert!(got.contains("-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m tcp --dport 80 -j KUBE-MARK-MASQ"), "{got}");

    ipvs::rules::remove(&ns.exec()).await.expect("cleanup");
    let got = saved(&ns);
    assert!(!got.contains("KUBE-"), "rules left after removal:\n{got}");
}
