//! The endpoints a selector service's EndpointSlices should hold, as upstream's `podToEndpoint` and
//! `getEndpointPorts` compute them: conditions ready/serving/terminating, node, zone, target, hostname, and
//! the ports resolved on each pod (pods resolving differently go to different slices).

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointHints, EndpointPort, ForZone};

use crate::model;

/// The node label giving an endpoint's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The address types (`IPv4`, `IPv6`) the service's slices use: its `ipFamilies`, else the family of its
/// cluster IP, else both (headless on an old API server).
pub(crate) fn address_types(svc: &Service) -> BTreeSet<&'static str> {
    let families = svc.spec.as_ref().and_then(|s| s.ip_families.as_ref());
    let mut types: BTreeSet<&'static str> = families
        .iter()
        .flat_map(|f| f.iter())
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if types.is_empty() {
        if model::is_service_ip_set(svc) {
            types.insert(if model::is_ipv6(model::cluster_ip(svc)) { "IPv6" } else { "IPv4" });
        } else {
            types.extend(["IPv4", "IPv6"]);
        }
    }
    types
}

/// The pod's addresses of `address_type`, in canonical text form.
fn addresses(pod: &Pod, address_type: &str) -> Vec<String> {
    model::pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == (address_type == "IPv6"))
        .map(|ip| ip.to_string())
        .collect()
}

/// The endpoint of `pod` for `svc` (its node, when known, gives the zone).
pub(crate) fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, address_type: &str) -> Endpoint {
    let serving = model::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    // A terminating pod is never "ready" unless the service publishes not-ready addresses.
    let ready = model::publish_not_ready(svc) || (serving && !terminating);
    let node_name = Some(model::node_name(pod).to_owned()).filter(|n| !n.is_empty());
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(ZONE_LABEL))
        .filter(|z| !z.is_empty())
        .cloned();
    // `trafficDistribution: PreferClose` hints each endpoint to its own zone.
    let prefer_close = svc.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref()) == Some("PreferClose");
    let hints = zone
        .clone()
        .filter(|_| prefer_close)
        .map(|name| EndpointHints { for_zones: Some(vec![ForZone { name }]), for_nodes: None });
    Endpoint {
        hints,
        addresses: addresses(pod, address_type),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        node_name,
        zone,
        hostname: if model::should_set_hostname(pod, svc) { model::hostname(pod) } else { None },
        ..Endpoint::default()
    }
}

/// The slice ports of `svc` resolved on `pod` (service ports the pod lacks are left out; a headless
/// service may have none).
pub(crate) fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    model::ports(svc)
        .iter()
        .filter_map(|sp| {
            let port = model::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// A set of ports as a map key, independent of order.
pub(crate) type PortsKey = Vec<(String, i32, String, String)>;

/// The key slices are grouped by (upstream's `PortMapKey`).
pub(crate) fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut k: PortsKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    k
}

/// An endpoint's identity inside its slices (upstream's endpoint hash): addresses, hostname, target.
pub(crate) type EndpointKey = (Vec<String>, String, String, String);

/// The identity of `ep`.
pub(crate) fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addrs = ep.addresses.clone();
    addrs.sort();
    let r = ep.target_ref.as_ref();
    (
        addrs,
        ep.hostname.clone().unwrap_or_default(),
        r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        r.and_then(|r| r.name.clone()).unwrap_or_default(),
    )
}

/// Whether two endpoints of the same identity differ in what the key leaves out (node, zone, conditions,
/// hints, target uid), the target's resourceVersion aside.
pub(crate) fn endpoint_changed(a: &Endpoint, b: &Endpoint) -> bool {
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    let cond = |e: &Endpoint| e.conditions.clone().unwrap_or_default();
    a.node_name != b.node_name || a.zone != b.zone || cond(a) != cond(b) || a.hints != b.hints || target(a) != target(b)
}
