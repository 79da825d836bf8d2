//! Tests of the model: Services and EndpointSlices as the API serves them → service ports, endpoints by
//! port name, conditions, locality, categorisation and change tracking; and the UDP conntrack flushes.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::conntrack::stale_udp_flushes;
use crate::model::{Protocol, ProxyState, ServicePortName};

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn slice(name: &str, svc: &str, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "ns", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn services() -> Vec<Service> {
    vec![
        svc(serde_json::json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": {
            "type": "LoadBalancer", "clusterIP": "10.254.0.10", "externalIPs": ["192.0.2.1"],
            "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}})),
        svc(serde_json::json!({"metadata": {"name": "headless", "namespace": "ns"}, "spec": {
            "clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})),
        svc(serde_json::json!({"metadata": {"name": "ext", "namespace": "ns"}, "spec": {
            "type": "ExternalName", "externalName": "example.com"}})),
    ]
}

fn key(port: &str, protocol: Protocol) -> ServicePortName {
    ServicePortName { namespace: "ns".into(), name: "web".into(), port: port.into(), protocol }
}

#[test]
fn services_and_slices_become_service_ports_and_endpoints() {
    let slices = [slice(
        "web-1",
        "web",
        serde_json::json!([
            {"addresses": ["172.30.1.2"], "conditions": {"ready": true}, "nodeName": "n1"},
            {"addresses": ["172.30.2.2"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "n2"},
            {"addresses": ["172.30.3.2"], "nodeName": "n3"},
        ]),
    )];
    let st = ProxyState::build(&services(), &slices, "n1");
    assert_eq!(st.services.len(), 2, "headless and ExternalName are not proxied: {:?}", st.services.keys());
    let http = &st.services[&key("http", Protocol::Tcp)];
    assert_eq!((http.port, http.node_port, http.affinity_seconds), (80, 30080, Some(10800)));
    assert_eq!(http.external_ips, vec!["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]);
    assert_eq!(http.load_balancer_ips, vec!["198.51.100.7".parse::<std::net::Ipv4Addr>().unwrap()]);
    assert!(http.external_local && !http.internal_local);
    let eps = st.endpoints_of(&key("http", Protocol::Tcp));
    assert_eq!(eps.iter().map(|e| (e.ip.to_string(), e.port)).collect::<Vec<_>>().len(), 3);
    assert!(eps.iter().all(|e| e.port == 8080), "ports matched by name");
    assert_eq!(st.endpoints_of(&key("dns", Protocol::Udp))[0].port, 53);
    let cat = st.categorize(&key("http", Protocol::Tcp), http);
    // Unset conditions count as ready; the terminating one is not used while others are ready.
    assert_eq!(cat.cluster.iter().map(|e| e.ip.to_string()).collect::<Vec<_>>(), ["172.30.1.2", "172.30.3.2"]);
    assert_eq!(cat.local.iter().map(|e| e.ip.to_string()).collect::<Vec<_>>(), ["172.30.1.2"]);
}

#[test]
fn serving_terminating_endpoints_are_the_fallback() {
    let slices = [slice(
        "web-1",
        "web",
        serde_json::json!([
            {"addresses": ["172.30.2.2"], "conditions": {"ready": false, "serving": true, "terminating": true}},
            {"addresses": ["172.30.2.3"], "conditions": {"ready": false, "serving": false, "terminating": true}},
        ]),
    )];
    let st = ProxyState::build(&services(), &slices, "n1");
    let k = key("http", Protocol::Tcp);
    let cat = st.categorize(&k, &st.services[&k]);
    assert_eq!(cat.cluster.iter().map(|e| e.ip.to_string()).collect::<Vec<_>>(), ["172.30.2.2"]);
    assert!(cat.has_endpoints);
}

#[test]
fn change_tracking_names_only_changed_ports() {
    let one = [slice("web-1", "web", serde_json::json!([{"addresses": ["172.30.1.2"]}]))];
    let two =
        [slice("web-1", "web", serde_json::json!([{"addresses": ["172.30.1.2"]}, {"addresses": ["172.30.1.3"]}]))];
    let a = ProxyState::build(&services(), &one, "n1");
    let b = ProxyState::build(&services(), &two, "n1");
    assert!(b.changed_since(&a.fingerprints()).len() == 2, "both ports of the slice changed");
    assert!(b.changed_since(&b.fingerprints()).is_empty());
    let gone = ProxyState::build(&services()[1..], &two, "n1");
    assert_eq!(gone.changed_since(&b.fingerprints()).len(), 2, "removed ports count as changed");
}

#[test]
fn udp_conntrack_flushed_for_removed_endpoints_and_first_endpoint() {
    let none = ProxyState::build(&services(), &[], "n1");
    let two =
        [slice("web-1", "web", serde_json::json!([{"addresses": ["172.30.1.2"]}, {"addresses": ["172.30.1.3"]}]))];
    let one = [slice("web-1", "web", serde_json::json!([{"addresses": ["172.30.1.2"]}]))];
    let (two, one) = (ProxyState::build(&services(), &two, "n1"), ProxyState::build(&services(), &one, "n1"));
    let first = stale_udp_flushes(&none, &two);
    assert_eq!(first, vec![vec!["-D", "-p", "udp", "--orig-dst", "10.254.0.10", "--orig-port-dst", "53"]]);
    let removed: Vec<String> = stale_udp_flushes(&two, &one).into_iter().map(|a| a.join(" ")).collect();
    assert_eq!(
        removed,
        [
            "-D -p udp --orig-dst 10.254.0.10 --dst-nat 172.30.1.3",
            "-D -p udp --orig-dst 192.0.2.1 --dst-nat 172.30.1.3",
            "-D -p udp --orig-dst 198.51.100.7 --dst-nat 172.30.1.3",
        ]
    );
    assert!(stale_udp_flushes(&one, &one).is_empty());
}
