//! Unit tests of the pure parts: fixtures here, cases per concern in the submodules.
#![allow(clippy::unwrap_used)]

mod endpoints;
mod mirroring;
mod slices;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A service `web` in `ns` selecting `app=web`, with cluster IP `10.0.0.10` and the given ports
/// (name, port, target).
pub(crate) fn service(ports: &[(&str, i32, IntOrString)]) -> Service {
    let mut s = Service::default();
    s.metadata.name = Some("web".into());
    s.metadata.namespace = Some("ns".into());
    s.metadata.uid = Some("svc-uid".into());
    s.spec = Some(ServiceSpec {
        selector: Some([("app".to_owned(), "web".to_owned())].into()),
        cluster_ip: Some("10.0.0.10".into()),
        ip_families: Some(vec!["IPv4".into()]),
        ports: Some(
            ports
                .iter()
                .map(|(n, p, t)| ServicePort {
                    name: Some((*n).into()),
                    port: *p,
                    target_port: Some(t.clone()),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                })
                .collect(),
        ),
        ..ServiceSpec::default()
    });
    s
}

/// A pod `name` labelled `app=web` on `node-1` with `ip`, ready or not, exposing container port `http`
/// as `http_port`.
pub(crate) fn pod(name: &str, ip: &str, ready: bool, http_port: i32) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("ns".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    p.spec = Some(PodSpec {
        node_name: Some("node-1".into()),
        containers: vec![Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: http_port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            ..Container::default()
        }],
        ..PodSpec::default()
    });
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(ip.into()),
        pod_ips: Some(vec![PodIP { ip: ip.into() }]),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    });
    p
}

/// Marks `p` as being deleted.
pub(crate) fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    p
}

/// A named target port.
pub(crate) fn named(n: &str) -> IntOrString {
    IntOrString::String(n.into())
}
