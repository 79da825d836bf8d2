//! Cluster DNS (rkube-dns) against the real `rkube server`: Services and EndpointSlices made with kubectl are
//! answered over UDP and TCP on 127.0.0.1, and names outside the cluster go to a stub upstream resolver the
//! test starts on 127.0.0.1 (never the real internet).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Server, apply, eventually, free_port};
use rkube_dns::proto::op::{Message, MessageType, ResponseCode};
use rkube_dns::proto::rr::rdata::A;
use rkube_dns::proto::rr::{RData, Record, RecordType};
use rkube_dns::{DnsConfig, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-manual
  namespace: default
  labels: {kubernetes.io/service-name: db, endpointslice.kubernetes.io/managed-by: dns-test}
addressType: IPv4
ports: [{name: pg, port: 15432, protocol: TCP}]
endpoints:
- addresses: [172.30.0.5]
  hostname: db-0
  conditions: {ready: true}
- addresses: [172.30.1.6]
  hostname: db-1
  conditions: {ready: true}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: db.example.org
"#;

/// The stub upstream: `outside.example.` A 192.0.2.1; `big.example.` truncated over UDP and 60 A records over
/// TCP; NXDOMAIN for anything else. Counts the queries it got over TCP.
async fn stub_upstream(tcp_queries: Arc<AtomicUsize>) -> SocketAddr {
    // The kernel picks a free UDP port; the same TCP port may be taken by another test's connection, so try again
    // with a fresh UDP port (a CI run once lost this race).
    let mut attempt = 0;
    let (udp, addr, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind stub udp");
        let addr = udp.local_addr().expect("addr");
        match TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, addr, tcp),
            Err(e) if attempt < 20 => {
                attempt += 1;
                eprintln!("stub upstream: tcp {addr} taken ({e}), trying another port");
            }
            Err(e) => panic!("bind stub tcp on the same port as udp {addr}: {e}"),
        }
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let reply = stub_answer(&buf[..n], false);
            let _ = udp.send_to(&reply, peer).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tcp_queries.fetch_add(1, Ordering::SeqCst);
            let n = s.read_u16().await.expect("len");
            let mut q = vec![0u8; usize::from(n)];
            s.read_exact(&mut q).await.expect("query");
            let reply = stub_answer(&q, true);
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            s.write_all(&framed).await.expect("write");
        }
    });
    addr
}

fn stub_answer(raw: &[u8], tcp: bool) -> Vec<u8> {
    let req = Message::from_vec(raw).expect("stub got a valid query");
    let q = req.queries()[0].clone();
    let mut m = Message::new();
    m.set_id(req.id()).set_message_type(MessageType::Response).set_recursion_available(true).add_query(q.clone());
    let a = |n: u8| Record::from_rdata(q.name().clone(), 60, RData::A(A::new(198, 51, 100, n)));
    match q.name().to_ascii().as_str() {
        "outside.example." => {
            m.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A::new(192, 0, 2, 1))));
        }
        "big.example." if tcp => {
            m.add_answers((0..60).map(a));
        }
        "big.example." => {
            m.set_truncated(true);
        }
        _ => {
            m.set_response_code(ResponseCode::NXDomain);
        }
    }
    m.to_vec().expect("encode")
}

fn addresses(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn cluster_dns_answers_from_the_api_and_forwards_the_rest() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tcp_queries = Arc::new(AtomicUsize::new(0));
    let upstream = rt.block_on(stub_upstream(tcp_queries.clone()));
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = DnsConfig {
        listen: vec![listen],
        domain: "cluster.local".into(),
        upstreams: vec![upstream],
        ttl: 30,
        metrics: Arc::default(),
    };
    let metrics = config.metrics.clone();
    let kubeconfig = s.kubeconfig.clone();
    let client = rt.block_on(async {
        let cfg = rkube_client::config::from_file(&kubeconfig).await.expect("kubeconfig");
        kube::Client::try_from(cfg).expect("client")
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    let dns = rt.spawn(rkube_dns::run(config, client, stop_rx, ready_tx));
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), ready_rx.wait_for(|r| *r)).await })
        .expect("DNS ready within 20 s")
        .expect("ready sender alive");

    apply(&s, MANIFEST);
    let cluster_ip = s.ok("1.33", &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let ask = |name: &str, t: RecordType| rt.block_on(client::query(listen, name, t)).expect("DNS answer");

    // Services: ClusterIP, headless (the ready endpoints), hostnames, SRV, ExternalName.
    eventually(&s, 20, "the services are in the DNS index", || {
        addresses(&ask("web.default.svc.cluster.local.", RecordType::A)) == [cluster_ip.clone()]
            && addresses(&ask("db.default.svc.cluster.local.", RecordType::A)).len() == 2
    });
    let web = ask("web.default.svc.cluster.local.", RecordType::A);
    assert!(web.authoritative());
    assert_eq!(web.answers()[0].ttl(), 30);
    assert_eq!(addresses(&ask("db.default.svc.cluster.local.", RecordType::A)), ["172.30.0.5", "172.30.1.6"]);
    assert_eq!(addresses(&ask("db-1.db.default.svc.cluster.local.", RecordType::A)), ["172.30.1.6"]);
    let srv = ask("_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
    let mut targets: Vec<(u16, String)> = srv
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some((s.port(), s.target().to_ascii())),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [(15432, "db-0.db.default.svc.cluster.local.".into()), (15432, "db-1.db.default.svc.cluster.local.".into())]
    );
    assert_eq!(srv.additionals().len(), 2, "the targets' addresses ride along");
    let srv = ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert!(matches!(srv.answers(), [r] if matches!(r.data(), RData::SRV(s)
        if s.port() == 80 && s.target().to_ascii() == "web.default.svc.cluster.local.")));
    let ext = ask("ext.default.svc.cluster.local.", RecordType::A);
    assert!(matches!(ext.answers(), [r] if matches!(r.data(), RData::CNAME(c) if c.0.to_ascii() == "db.example.org.")));

    // PTR for the cluster IP and a headless endpoint.
    let ip: IpAddr = cluster_ip.parse().expect("cluster IP");
    let IpAddr::V4(v4) = ip else { panic!("IPv4 cluster IP expected") };
    let o = v4.octets();
    let ptr = ask(&format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]), RecordType::PTR);
    assert!(
        matches!(ptr.answers(), [r] if matches!(r.data(), RData::PTR(p) if p.0.to_ascii() == "web.default.svc.cluster.local."))
    );
    let ptr = ask("5.0.30.172.in-addr.arpa.", RecordType::PTR);
    assert!(
        matches!(ptr.answers(), [r] if matches!(r.data(), RData::PTR(p) if p.0.to_ascii() == "db-0.db.default.svc.cluster.local."))
    );

    // Pods, NXDOMAIN (with the SOA), NODATA, and a pod resolver's search-path expansion.
    assert_eq!(addresses(&ask("172-30-0-9.default.pod.cluster.local.", RecordType::A)), ["172.30.0.9"]);
    for name in ["nope.default.svc.cluster.local.", "web.default.svc.cluster.local.default.svc.cluster.local."] {
        let m = ask(name, RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NXDomain, "{name}");
        assert!(matches!(m.name_servers(), [soa] if soa.record_type() == RecordType::SOA), "{name}");
    }
    let nodata = ask("web.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(
        (nodata.response_code(), nodata.answers().len(), nodata.name_servers().len()),
        (ResponseCode::NoError, 0, 1)
    );

    // TCP answers too.
    let tcp = rt.block_on(client::query_tcp(listen, "db.default.svc.cluster.local.", RecordType::A)).expect("tcp");
    assert_eq!(addresses(&tcp), ["172.30.0.5", "172.30.1.6"]);

    // Forwarding: relayed answers, TCP to the upstream on truncation, TC to a UDP client that cannot take it.
    assert_eq!(addresses(&ask("outside.example.", RecordType::A)), ["192.0.2.1"]);
    assert_eq!(ask("missing.example.", RecordType::A).response_code(), ResponseCode::NXDomain);
    let big = ask("big.example.", RecordType::A);
    assert!(big.truncated(), "60 records do not fit 512 bytes");
    assert!(tcp_queries.load(Ordering::SeqCst) >= 1, "the upstream was asked over TCP after its TC");
    let big = rt.block_on(client::query_tcp(listen, "big.example.", RecordType::A)).expect("tcp");
    assert_eq!(big.answers().len(), 60);
    let unknown_ptr = ask("1.2.0.192.in-addr.arpa.", RecordType::PTR);
    assert_eq!(unknown_ptr.response_code(), ResponseCode::NXDomain, "unknown reverse names go upstream");
    assert!(!unknown_ptr.authoritative(), "the upstream's answer, not ours");

    // Changes follow the watch.
    s.ok("1.33", &["delete", "svc", "web"]);
    s.ok("1.33", &["delete", "endpointslice", "db-manual"]);
    eventually(&s, 20, "deleted objects leave DNS", || {
        ask("web.default.svc.cluster.local.", RecordType::A).response_code() == ResponseCode::NXDomain
            && ask("db.default.svc.cluster.local.", RecordType::A).response_code() == ResponseCode::NXDomain
    });

    assert!(metrics.responses("NXDOMAIN") >= 4 && metrics.responses("NOERROR") >= 10, "{}", metrics.render());

    // A short benchmark run (the figures are printed; the bench command wires this with longer runs).
    let names = vec![
        ("ext.default.svc.cluster.local.".to_string(), RecordType::A),
        ("db.default.svc.cluster.local.".into(), RecordType::A),
    ];
    let report = rt.block_on(client::bench(listen, &names, 8, Duration::from_secs(1)));
    println!("dns bench: {report:?}");
    assert!(report.queries > 100 && report.errors == 0, "{report:?}");

    stop_tx.send_replace(true);
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), dns).await })
        .expect("DNS stops within 5 s")
        .expect("join")
        .expect("run returned Ok");
}
