//! The DNS part of `rkube bench proxy`: a server answering from an index of N services (no API server: the
//! index is filled directly), queried by concurrent UDP clients over loopback.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::net::UdpSocket;

use crate::client::{BenchReport, bench};
use crate::index::Index;
use crate::server::{Handler, serve_udp};

/// Serves `services` ClusterIP services on 127.0.0.1 and runs `clients` clients for `duration` asking for
/// their A records in turn.
pub async fn run(services: usize, clients: usize, duration: Duration) -> std::io::Result<BenchReport> {
    let mut index = Index::default();
    for i in 0..services {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 254, 16, 0)) + i as u32);
        index.apply_service(&Service {
            metadata: ObjectMeta {
                name: Some(format!("svc-{i}")),
                namespace: Some("bench".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.to_string()),
                ports: Some(vec![ServicePort { name: Some("http".into()), port: 80, ..ServicePort::default() }]),
                ..ServiceSpec::default()
            }),
            status: None,
        });
    }
    let handler = Arc::new(Handler {
        index: Arc::new(RwLock::new(index)),
        zone: crate::answer::Zone { domain: "cluster.local".into(), ttl: 30 },
        upstreams: Vec::new(),
        metrics: Arc::default(),
    });
    let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = socket.local_addr()?;
    let server = tokio::spawn(serve_udp(socket, handler));
    let names: Vec<(String, RecordType)> =
        (0..services.clamp(1, 1000)).map(|i| (format!("svc-{i}.bench.svc.cluster.local."), RecordType::A)).collect();
    let report = bench(addr, &names, clients, duration).await;
    server.abort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_bench_gets_answers() {
        let r = super::run(10, 2, std::time::Duration::from_millis(300)).await.expect("bench");
        assert!(r.queries > 10, "{r:?}");
        assert_eq!(r.errors, 0, "{r:?}");
        assert!(r.p99 >= r.p50);
    }
}
