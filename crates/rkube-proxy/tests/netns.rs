//! Real rules in real network namespaces (root only): the test makes a "node" netns and a "pod" netns
//! joined by a veth, serves HTTP from the pod, and drives a Proxier whose tools run under
//! `ip netns exec NODE` — the host namespace's iptables/nftables are never touched. Checks the applied
//! layout (`iptables-save`, `nft list table`), partial rewrites, a failing restore leaving the rules as
//! they were, ClusterIP traffic, REJECT when scaled to zero, and `/healthz` + `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::Lab;
use rkube_proxy::model::{Endpoint, Protocol, ProxyState, ServicePort, ServicePortName};
use rkube_proxy::{Metrics, Proxier, RuleOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spn(name: &str) -> ServicePortName {
    ServicePortName { namespace: "default".into(), name: name.into(), port: "http".into(), protocol: Protocol::Tcp }
}

fn port(ip: &str, p: u16) -> ServicePort {
    ServicePort {
        cluster_ip: ip.parse().unwrap(),
        port: p,
        node_port: 0,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        affinity_seconds: None,
        internal_local: false,
        external_local: false,
    }
}

fn ep(ip: &str, p: u16) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), port: p, ready: true, serving: true, terminating: false, local: true }
}

/// `web` (ClusterIP 10.254.0.10:80 → the pod's 8080, when `web_up`) and `pair` (two unreachable endpoints,
/// the second one `second`), for the layout checks.
fn state(web_up: bool, second: &str) -> ProxyState {
    let mut st = ProxyState::default();
    st.services.insert(spn("web"), port("10.254.0.10", 80));
    if web_up {
        st.endpoints.insert(spn("web"), vec![ep("172.30.9.2", 8080)]);
    }
    st.services.insert(spn("pair"), port("10.254.0.11", 80));
    let mut eps = vec![ep("172.30.5.1", 80), ep(second, 80)];
    eps.sort();
    st.endpoints.insert(spn("pair"), eps);
    st
}

/// A state whose restore must fail: a loadBalancerSourceRanges entry that is not a CIDR.
fn broken(mut st: ProxyState) -> ProxyState {
    let mut bad = port("10.254.0.12", 80);
    bad.load_balancer_ips = vec!["192.0.2.50".parse().unwrap()];
    bad.load_balancer_source_ranges = vec!["not-a-cidr".into()];
    st.services.insert(spn("bad"), bad);
    st.endpoints.insert(spn("bad"), vec![ep("172.30.5.9", 80)]);
    st
}

fn opts() -> RuleOptions {
    RuleOptions { cluster_cidr: Some("172.30.0.0/16".into()), ..RuleOptions::default() }
}

/// iptables-save without counters and comments lines that change between runs.
fn saved(lab: &Lab) -> String {
    lab.in_node(&["iptables-save"]).lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn iptables_rules_in_a_netns() {
    let mut lab = Lab::new("ipt");
    lab.serve();
    let metrics = Arc::new(Metrics::default());
    let listener = rkube_proxy::metrics::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let maddr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(rkube_proxy::metrics::serve(listener, metrics.clone(), stop_rx));
    assert!(http_get(maddr, "/healthz").await.contains(" 503 "));

    let mut p = Proxier::iptables(opts(), lab.exec(), metrics.clone());
    p.sync(&state(true, "172.30.5.2"), true).await.expect("first sync");
    let nat = lab.in_node(&["iptables-save", "-t", "nat"]);
    for want in [
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-",
        "-j DNAT --to-destination 172.30.9.2:8080",
        "! -s 172.30.0.0/16",
    ] {
        assert!(nat.contains(want), "missing {want:?} in\n{nat}");
    }
    let filter = lab.in_node(&["iptables-save", "-t", "filter"]);
    assert!(filter.contains(":KUBE-FORWARD") && filter.contains(":KUBE-PROXY-FIREWALL"), "{filter}");
    assert_eq!(lab.connect("10.254.0.10", 80), "ok", "ClusterIP did not answer:\n{nat}");

    // One endpoint of `pair` changes: only its service chain and the new endpoint chain are written.
    let before = saved(&lab);
    let r = p.sync(&state(true, "172.30.5.3"), false).await.expect("partial sync");
    assert_eq!(r.written.len(), 2, "{:?}", r.written);
    assert!(r.written[0].starts_with("KUBE-SVC-") && r.written[1].starts_with("KUBE-SEP-"), "{:?}", r.written);
    assert_eq!(r.deleted.len(), 1);
    let after = saved(&lab);
    assert!(!after.contains(&format!(":{} ", r.deleted[0])) && after.contains(&format!(":{} ", r.written[1])));
    assert_ne!(before, after);

    // A restore that fails leaves every rule as it was and is counted.
    let err = p.sync(&broken(state(true, "172.30.5.3")), false).await.expect_err("bad CIDR must fail");
    assert!(err.to_string().contains("iptables-restore"), "{err}");
    assert_eq!(saved(&lab), after, "a failed restore changed the rules");
    assert_eq!(metrics.restore_failures.load(Ordering::Relaxed), 1);
    assert_eq!(lab.connect("10.254.0.10", 80), "ok");

    // Scaled to zero: the filter table REJECTs at once.
    p.sync(&state(false, "172.30.5.3"), false).await.expect("scale to zero");
    assert!(lab.in_node(&["iptables-save", "-t", "filter"]).contains("\"default/web:http has no endpoints\""));
    assert_eq!(lab.connect("10.254.0.10", 80), "refused");
    p.sync(&state(true, "172.30.5.3"), false).await.expect("scale back");
    assert_eq!(lab.connect("10.254.0.10", 80), "ok");

    assert!(http_get(maddr, "/healthz").await.contains(" 200 "));
    let m = http_get(maddr, "/metrics").await;
    for want in [
        "kubeproxy_sync_proxy_rules_duration_seconds_count 5",
        "kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1",
        "kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\"}",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    stop_tx.send(true).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn nftables_rules_in_a_netns() {
    let mut lab = Lab::new("nft");
    lab.serve();
    let metrics = Arc::new(Metrics::default());
    let mut p = Proxier::nftables(opts(), lab.exec(), metrics.clone());
    p.sync(&state(true, "172.30.5.2"), true).await.expect("first sync");
    let table = lab.in_node(&["nft", "list", "table", "ip", "kube-proxy"]);
    for want in [
        "chain services {",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "map service-ips {",
        "map no-endpoint-services {",
        "chain service-",
        "numgen random mod 2 vmap {",
        "dnat to 172.30.9.2:8080",
        "10.254.0.10 . tcp . 80 : goto service-",
    ] {
        assert!(table.contains(want), "missing {want:?} in\n{table}");
    }
    assert_eq!(lab.connect("10.254.0.10", 80), "ok", "ClusterIP did not answer:\n{table}");

    let r = p.sync(&state(true, "172.30.5.3"), false).await.expect("partial sync");
    assert_eq!(r.written.len(), 2, "{:?}", r.written);
    assert!(r.written.iter().all(|c| c.contains("default/pair/")), "{:?}", r.written);
    assert!(!r.text.contains("flush map"), "{}", r.text);
    let after = lab.in_node(&["nft", "list", "table", "ip", "kube-proxy"]);
    assert!(after.contains("172.30.5.3/80") && !after.contains("172.30.5.2/80"), "{after}");

    let err = p.sync(&broken(state(true, "172.30.5.3")), false).await.expect_err("bad CIDR must fail");
    assert!(err.to_string().contains("nft"), "{err}");
    assert_eq!(lab.in_node(&["nft", "list", "table", "ip", "kube-proxy"]), after, "a failed transaction changed rules");
    assert_eq!(metrics.restore_failures.load(Ordering::Relaxed), 1);

    p.sync(&state(false, "172.30.5.3"), false).await.expect("scale to zero");
    assert_eq!(lab.connect("10.254.0.10", 80), "refused");
    p.sync(&state(true, "172.30.5.3"), false).await.expect("scale back");
    assert_eq!(lab.connect("10.254.0.10", 80), "ok");
    // A full resync of an unchanged state keeps working traffic.
    p.sync(&state(true, "172.30.5.3"), true).await.expect("full resync");
    assert_eq!(lab.connect("10.254.0.10", 80), "ok");
}

#[tokio::test]
async fn ipvs_mode_refuses_to_start_without_ip_vs() {
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let (ready, _rx) = tokio::sync::oneshot::channel();
    let config =
        rkube_proxy::ProxyConfig { mode: rkube_proxy::ProxyMode::Ipvs, metrics_addr: None, ..Default::default() };
    let err = rkube_proxy::run(config, client, stop, ready).await.expect_err("no ip_vs here");
    let msg = err.to_string();
    assert!(msg.contains("ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh") && msg.contains("modprobe"), "{msg}");
}

/// The benchmark at a small size, as a check that it runs and that a one-endpoint change applies far less
/// than a full sync in both modes (the 1k/10k figures come from `rkube bench proxy`).
#[tokio::test]
async fn bench_runs_in_its_own_namespaces() {
    let results = rkube_proxy::bench::run_all(&[200], 10).await.expect("bench");
    assert_eq!(results.len(), 2);
    for r in &results {
        assert!(r.partial_bytes * 20 < r.full_bytes, "{r:?}");
        eprintln!("{r:?}");
    }
}
