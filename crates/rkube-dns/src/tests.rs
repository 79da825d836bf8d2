//! Unit tests of the record logic over an index built from k8s-openapi objects, and of message handling.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use crate::answer::{Outcome, Reply, Zone, answer};
use crate::index::Index;
use crate::server::Handler;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).expect("service")
}

fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).expect("slice")
}

fn index() -> Index {
    let mut i = Index::default();
    i.apply_service(&svc(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.254.0.10", "clusterIPs": ["10.254.0.10"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}})));
    i.apply_service(&svc(json!({"metadata": {"name": "db", "namespace": "prod"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})));
    i.apply_service(&svc(json!({"metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com."}})));
    i.apply_service(&svc(json!({"metadata": {"name": "empty", "namespace": "prod"}, "spec": {"clusterIP": "None"}})));
    i.apply_slice(&slice(json!({"metadata": {"name": "db-abc", "namespace": "prod",
            "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 15432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["172.30.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["172.30.1.6"], "hostname": "db-1"},
            {"addresses": ["172.30.1.7"], "conditions": {"ready": false}},
            {"addresses": ["172.30.2.8"], "conditions": {"ready": true}}]})));
    i
}

fn zone() -> Zone {
    Zone { domain: "cluster.local".into(), ttl: 30 }
}

fn ask(i: &Index, name: &str, t: RecordType) -> Reply {
    match answer(i, &zone(), &Name::from_ascii(name).expect("name"), t) {
        Outcome::Local(r) => r,
        Outcome::Forward => panic!("{name} was forwarded"),
    }
}

fn ips(r: &Reply) -> Vec<String> {
    let mut v: Vec<String> = r
        .answers
        .iter()
        .filter_map(|a| match a.data() {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn nxdomain(r: &Reply) -> bool {
    r.rcode == ResponseCode::NXDomain && r.answers.is_empty() && soa(r)
}

fn nodata(r: &Reply) -> bool {
    r.rcode == ResponseCode::NoError && r.answers.is_empty() && soa(r)
}

fn soa(r: &Reply) -> bool {
    matches!(r.authority.as_slice(), [s] if s.record_type() == RecordType::SOA
        && s.name().to_ascii() == "cluster.local.")
}

#[test]
fn cluster_ip_service_a_and_nodata() {
    let i = index();
    let r = ask(&i, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(ips(&r), ["10.254.0.10"]);
    assert_eq!(r.answers[0].ttl(), 30);
    assert!(r.authority.is_empty());
    // Case-insensitive, the owner name keeps the asker's case.
    let r = ask(&i, "WEB.Default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.answers[0].name().to_ascii(), "WEB.Default.svc.cluster.local.");
    assert!(nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::AAAA)));
    assert!(nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::MX)));
}

#[test]
fn missing_names_are_nxdomain_and_search_path_expansions_too() {
    let i = index();
    for name in [
        "nope.default.svc.cluster.local.",
        "web.nope.svc.cluster.local.",
        "web.default.svc.cluster.local.default.svc.cluster.local.",
        "web.default.svc.cluster.local.svc.cluster.local.",
        "web.default.svc.cluster.local.cluster.local.",
        "web.default.cluster.local.",
        "x.y.z.web.default.svc.cluster.local.",
        "nope.cluster.local.",
    ] {
        assert!(nxdomain(&ask(&i, name, RecordType::A)), "{name}");
    }
    // Existing intermediate names are NODATA.
    for name in ["cluster.local.", "svc.cluster.local.", "default.svc.cluster.local.", "pod.cluster.local."] {
        assert!(nodata(&ask(&i, name, RecordType::A)), "{name}");
    }
}

#[test]
fn headless_service_ready_endpoints_and_hostnames() {
    let i = index();
    let r = ask(&i, "db.prod.svc.cluster.local.", RecordType::A);
    assert_eq!(ips(&r), ["172.30.0.5", "172.30.1.6", "172.30.2.8"], "not-ready endpoint left out");
    assert_eq!(ips(&ask(&i, "db-1.db.prod.svc.cluster.local.", RecordType::A)), ["172.30.1.6"]);
    assert_eq!(ips(&ask(&i, "172-30-2-8.db.prod.svc.cluster.local.", RecordType::A)), ["172.30.2.8"]);
    assert!(nxdomain(&ask(&i, "172-30-1-7.db.prod.svc.cluster.local.", RecordType::A)), "not ready");
    assert!(nxdomain(&ask(&i, "db-9.db.prod.svc.cluster.local.", RecordType::A)));
    assert!(nodata(&ask(&i, "db-0.db.prod.svc.cluster.local.", RecordType::AAAA)));
    assert!(nxdomain(&ask(&i, "empty.prod.svc.cluster.local.", RecordType::A)), "headless without endpoints");
}

fn srv(r: &Reply) -> Vec<(u16, u16, String)> {
    let mut v: Vec<_> = r
        .answers
        .iter()
        .filter_map(|a| match a.data() {
            RData::SRV(s) => Some((s.port(), s.weight(), s.target().to_ascii())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn srv_for_named_ports() {
    let i = index();
    let r = ask(&i, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(srv(&r), [(80, 100, "web.default.svc.cluster.local.".to_string())]);
    assert_eq!(r.additionals.len(), 1);
    let r = ask(&i, "_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        srv(&r),
        [
            (15432, 33, "172-30-2-8.db.prod.svc.cluster.local.".to_string()),
            (15432, 33, "db-0.db.prod.svc.cluster.local.".to_string()),
            (15432, 33, "db-1.db.prod.svc.cluster.local.".to_string()),
        ]
    );
    assert_eq!(r.additionals.len(), 3);
    assert!(nxdomain(&ask(&i, "_http._udp.web.default.svc.cluster.local.", RecordType::SRV)));
    assert!(nxdomain(&ask(&i, "_nope._tcp.db.prod.svc.cluster.local.", RecordType::SRV)));
    assert!(nxdomain(&ask(&i, "http.tcp.web.default.svc.cluster.local.", RecordType::SRV)), "no underscores");
    // SRV at the service name lists every port.
    assert_eq!(srv(&ask(&i, "web.default.svc.cluster.local.", RecordType::SRV)).len(), 2);
}

#[test]
fn external_name_is_a_cname() {
    let i = index();
    let r = ask(&i, "ext.default.svc.cluster.local.", RecordType::A);
    match r.answers.as_slice() {
        [a] => assert!(matches!(a.data(), RData::CNAME(c) if c.0.to_ascii() == "example.com.")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pod_records_insecure() {
    let i = index();
    assert_eq!(ips(&ask(&i, "172-30-9-9.anything.pod.cluster.local.", RecordType::A)), ["172.30.9.9"]);
    assert_eq!(ips(&ask(&i, "fd00--1.default.pod.cluster.local.", RecordType::AAAA)), ["fd00::1"]);
    assert!(nodata(&ask(&i, "172-30-9-9.default.pod.cluster.local.", RecordType::AAAA)));
    assert!(nxdomain(&ask(&i, "172-30-9.default.pod.cluster.local.", RecordType::A)));
    assert!(nxdomain(&ask(&i, "not-an-ip.default.pod.cluster.local.", RecordType::A)));
}

#[test]
fn ptr_for_cluster_ips_and_headless_endpoints_others_forwarded() {
    let i = index();
    let ptr = |name: &str| match answer(&i, &zone(), &Name::from_ascii(name).expect("name"), RecordType::PTR) {
        Outcome::Local(r) => r
            .answers
            .iter()
            .filter_map(|a| match a.data() {
                RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Outcome::Forward => Vec::new(),
    };
    assert_eq!(ptr("10.0.254.10.in-addr.arpa."), ["web.default.svc.cluster.local."]);
    assert_eq!(ptr("5.0.30.172.in-addr.arpa."), ["db-0.db.prod.svc.cluster.local."]);
    assert_eq!(ptr("8.2.30.172.in-addr.arpa."), ["172-30-2-8.db.prod.svc.cluster.local."]);
    assert!(ptr("7.1.30.172.in-addr.arpa.").is_empty(), "not ready: forwarded");
    assert!(matches!(
        answer(&i, &zone(), &Name::from_ascii("example.com.").expect("name"), RecordType::A),
        Outcome::Forward
    ));
}

#[test]
fn updates_and_deletes_change_answers() {
    let mut i = index();
    let serial = i.serial();
    i.apply_service(&svc(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.254.0.11", "clusterIPs": ["10.254.0.11", "fd00::11"]}})));
    assert_ne!(i.serial(), serial);
    assert_eq!(ips(&ask(&i, "web.default.svc.cluster.local.", RecordType::AAAA)), ["fd00::11"]);
    i.delete_slice(&slice(
        json!({"metadata": {"name": "db-abc", "namespace": "prod"}, "addressType": "IPv4", "endpoints": []}),
    ));
    assert!(nxdomain(&ask(&i, "db.prod.svc.cluster.local.", RecordType::A)));
    i.replace_services(&[]);
    assert!(nxdomain(&ask(&i, "web.default.svc.cluster.local.", RecordType::A)));
    assert!(nxdomain(&ask(&i, "default.svc.cluster.local.", RecordType::A)), "namespace without services");
}

#[test]
fn resolv_conf_nameservers() {
    let got =
        crate::parse_resolv_conf("# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\noptions ndots:5\n");
    assert_eq!(got, ["10.0.0.1:53".parse::<SocketAddr>().expect("addr"), "[fe80::1]:53".parse().expect("addr")]);
}

fn handler(upstreams: Vec<SocketAddr>) -> Handler {
    Handler { index: Arc::new(RwLock::new(index())), zone: zone(), upstreams, metrics: Arc::default() }
}

fn raw_query(name: &str, t: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), t));
    m.to_vec().expect("encode")
}

#[tokio::test]
async fn handler_sets_flags_counts_rcodes_and_servfails_without_upstreams() {
    let h = handler(Vec::new());
    let m = Message::from_vec(
        &h.handle(&raw_query("web.default.svc.cluster.local.", RecordType::A, 7), false).await.expect("reply"),
    )
    .expect("parse");
    assert_eq!(m.id(), 7);
    assert!(m.authoritative() && m.recursion_available() && m.recursion_desired());
    assert_eq!(m.queries().len(), 1);
    let m = Message::from_vec(
        &h.handle(&raw_query("nope.default.svc.cluster.local.", RecordType::A, 8), false).await.expect("reply"),
    )
    .expect("parse");
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(m.name_servers().len(), 1);
    let m = Message::from_vec(&h.handle(&raw_query("example.com.", RecordType::A, 9), false).await.expect("reply"))
        .expect("parse");
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    let m = Message::from_vec(&h.handle(&[0, 10, 1], false).await.expect("formerr")).expect("parse");
    assert_eq!(m.response_code(), ResponseCode::FormErr);
    assert_eq!((h.metrics.responses("NOERROR"), h.metrics.responses("NXDOMAIN")), (1, 1));
    assert_eq!((h.metrics.responses("SERVFAIL"), h.metrics.responses("FORMERR")), (1, 1));
    assert!(h.metrics.render().contains("rkube_dns_responses_total{rcode=\"NXDOMAIN\"} 1"));
}

#[tokio::test]
async fn large_udp_answers_are_truncated_and_complete_over_tcp() {
    let h = handler(Vec::new());
    {
        let mut i = h.index.write().expect("lock");
        let endpoints: Vec<_> = (0..100).map(|n| json!({"addresses": [format!("172.30.3.{n}")]})).collect();
        i.apply_slice(&slice(json!({"metadata": {"name": "db-big", "namespace": "prod",
            "labels": {"kubernetes.io/service-name": "db"}}, "addressType": "IPv4", "endpoints": endpoints})));
    }
    let q = raw_query("db.prod.svc.cluster.local.", RecordType::A, 1);
    let udp = Message::from_vec(&h.handle(&q, false).await.expect("reply")).expect("parse");
    assert!(udp.truncated() && udp.answers().is_empty());
    let tcp = Message::from_vec(&h.handle(&q, true).await.expect("reply")).expect("parse");
    assert!(!tcp.truncated());
    assert_eq!(tcp.answers().len(), 103);
}
