//! Service, endpoints and endpoint slice rows against hand-written objects.

use serde_json::json;

use crate::tests_support::{ago, at};

#[test]
fn service_types() {
    let now = at("2024-01-01T00:00:00Z");
    let node_port = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(now, 90)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}
    });
    assert_eq!(
        crate::cells("", "services", &node_port, now),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.0.20"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("90s"),
            json!("app=web"),
        ]
    );
    let kubernetes =
        json!({"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}});
    assert_eq!(
        crate::cells("", "services", &kubernetes, now)[1..5],
        [json!("ClusterIP"), json!("10.96.0.1"), json!("<none>"), json!("443/TCP")]
    );
    let pending =
        json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.9"], "ports": []}});
    let cells = crate::cells("", "services", &pending, now);
    assert_eq!(cells[3..5], [json!("<pending>"), json!("<none>")]);
    let assigned = json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"], "ports": [{"port": 443, "nodePort": 31443}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.9"}]}}
    });
    assert_eq!(crate::cells("", "services", &assigned, now)[3], json!("203.0.113.9,lb.example.com,1.2.3.4"));
    let external = json!({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com", "clusterIP": ""}});
    assert_eq!(crate::cells("", "services", &external, now)[2..4], [json!("<none>"), json!("db.example.com")]);
    let headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["5.6.7.8"]}});
    assert_eq!(crate::cells("", "services", &headless, now)[2..4], [json!("None"), json!("5.6.7.8")]);
}

#[test]
fn endpoints_lists() {
    let now = at("2024-01-01T00:00:00Z");
    let ep = json!({
        "metadata": {"name": "web"},
        "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]},
            {"addresses": [{"ip": "10.0.0.3"}, {"ip": "fd00::4"}], "ports": [{"port": 80}]}
        ]
    });
    assert_eq!(
        crate::cells("", "endpoints", &ep, now),
        vec![json!("web"), json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."), json!("<unknown>")]
    );
    let headless = json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.7"}]}]});
    assert_eq!(crate::cells("", "endpoints", &headless, now)[1], json!("10.0.0.7"));
    let v6 =
        json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::4"}], "ports": [{"port": 8080}]}]});
    assert_eq!(crate::cells("", "endpoints", &v6, now)[1], json!("[fd00::4]:8080"));
    let none = json!({"metadata": {"name": "n"}});
    assert_eq!(crate::cells("", "endpoints", &none, now)[1], json!("<none>"));
}

#[test]
fn endpoint_slices() {
    let now = at("2024-01-01T00:00:00Z");
    let slice = json!({
        "metadata": {"name": "web-abc12", "creationTimestamp": ago(now, 30)},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}, {"port": 9000}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]
    });
    assert_eq!(
        crate::cells("discovery.k8s.io", "endpointslices", &slice, now),
        vec![
            json!("web-abc12"),
            json!("IPv4"),
            json!("80,metrics,* + 1 more..."),
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
            json!("30s"),
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
    assert_eq!(
        crate::cells("discovery.k8s.io", "endpointslices", &empty, now)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}
