//! Services get ClusterIPs and NodePorts from their ranges, never twice, released on delete; the
//! `kubernetes` service sits on the first IP; workloads scale through the `scale` subresource.

mod common;

use common::Server;

#[test]
fn kubernetes_service_on_the_first_ip_with_the_advertised_endpoint() {
    let s = Server::start();
    let ip = s.ok("1.33", &["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(ip, "10.254.0.1");
    // The advertised address is the node's (detected from the default route), never loopback.
    let ep = s.ok(
        "1.33",
        &["get", "endpoints", "kubernetes", "-o", "jsonpath={.subsets[0].addresses[0].ip} {.subsets[0].ports[0].port}"],
    );
    let (ip, port) = ep.split_once(' ').expect("ip and port");
    assert!(!ip.parse::<std::net::IpAddr>().expect("an IP").is_loopback(), "{ep}");
    assert_eq!(port, s.port.to_string());
    // And the EndpointSlice service proxies read, as upstream's endpoints reconciler writes it.
    let slice = s.ok(
        "1.33",
        &["get", "endpointslice", "kubernetes", "-o", "jsonpath={.metadata.labels.kubernetes\\.io/service-name} {.endpoints[0].addresses[0]} {.endpoints[0].conditions.ready} {.ports[0].port}"],
    );
    assert_eq!(slice, format!("kubernetes {ip} true {port}"));
}

#[test]
fn cluster_ips_and_node_ports_are_allocated_once_and_released() {
    let s = Server::start();
    for v in ["1.33", "1.27"] {
        let name = format!("c{}", v.replace('.', ""));
        s.ok(v, &["create", "service", "clusterip", &name, "--tcp=80:8080"]);
        let ip = s.ok(v, &["get", "svc", &name, "-o", "jsonpath={.spec.clusterIP}"]);
        assert!(ip.starts_with("10.254.") && ip != "10.254.0.1", "{ip}");
        let target = s.ok(v, &["get", "svc", &name, "-o", "jsonpath={.spec.ports[0].targetPort}"]);
        assert_eq!(target, "8080");
    }
    s.ok("1.33", &["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"]);
    assert_eq!(s.ok("1.33", &["get", "svc", "np", "-o", "jsonpath={.spec.ports[0].nodePort}"]), "30080");
    let err = s.fails("1.33", &["create", "service", "nodeport", "np2", "--tcp=80:8080", "--node-port=30080"]);
    assert!(err.contains("provided port is already allocated"), "{err}");
    let err = s.fails("1.33", &["create", "service", "nodeport", "np3", "--tcp=80:8080", "--node-port=80"]);
    assert!(err.contains("provided port is not in the valid range"), "{err}");
    s.ok("1.33", &["delete", "svc", "np"]);
    s.ok("1.33", &["create", "service", "nodeport", "np2", "--tcp=80:8080", "--node-port=30080"]);
    // Creating an existing service again fails (AlreadyExists) and frees nothing of the existing one's (two
    // servers bootstrapping `kubernetes` at once, or any restart, do exactly this).
    s.ok("1.33", &["create", "service", "clusterip", "fixed", "--tcp=80", "--clusterip=10.254.7.7"]);
    for (name, extra) in [("np2", "--node-port=30080"), ("fixed", "--clusterip=10.254.7.7")] {
        let kind = if name == "np2" { "nodeport" } else { "clusterip" };
        let err = s.fails("1.33", &["create", "service", kind, name, "--tcp=80:8080", extra]);
        assert!(err.contains("AlreadyExists") || err.contains("already exists"), "{err}");
    }
    let err = s.fails("1.33", &["create", "service", "nodeport", "np4", "--tcp=80:8080", "--node-port=30080"]);
    assert!(err.contains("provided port is already allocated"), "{err}");
    let err = s.fails("1.33", &["create", "service", "clusterip", "other", "--tcp=80", "--clusterip=10.254.7.7"]);
    assert!(err.contains("provided IP is already allocated"), "{err}");
    s.ok("1.33", &["create", "service", "nodeport", "auto", "--tcp=81:8080"]);
    let port: u32 =
        s.ok("1.33", &["get", "svc", "auto", "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse().expect("a port");
    assert!((30000..=32767).contains(&port), "{port}");

    // Many services at once: all ClusterIPs distinct.
    for i in 0..20 {
        s.ok("1.27", &["create", "service", "clusterip", &format!("m{i}"), "--tcp=80"]);
    }
    let ips = s.ok("1.33", &["get", "svc", "-o", "jsonpath={.items[*].spec.clusterIP}"]);
    let list: Vec<&str> = ips.split_whitespace().collect();
    let unique: std::collections::HashSet<&&str> = list.iter().collect();
    assert_eq!(list.len(), unique.len(), "duplicate ClusterIPs: {ips}");

    let err = s.fails("1.33", &["create", "service", "clusterip", "Bad_Name", "--tcp=80"]);
    assert!(err.contains("Invalid value: \"Bad_Name\"") || err.contains("must consist of lower case"), "{err}");
}

#[test]
fn scale_subresource() {
    let s = Server::start();
    s.ok("1.33", &["create", "deployment", "web", "--image=busybox", "--replicas=2"]);
    let scale = s.ok("1.33", &["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"]);
    assert!(
        scale.contains("\"kind\":\"Scale\"")
            && scale.contains("\"replicas\":2")
            && scale.contains("\"selector\":\"app=web\""),
        "{scale}"
    );
    for v in ["1.33", "1.27"] {
        s.ok(v, &["scale", "deployment", "web", "--replicas=5"]);
        assert_eq!(s.ok(v, &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "5");
        s.ok(v, &["scale", "deployment", "web", "--replicas=1"]);
    }
    let generation = s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.metadata.generation}"]);
    assert!(generation.parse::<i64>().expect("generation") >= 5, "each spec change bumps the generation: {generation}");
    // kubectl checks --resource-version itself before writing.
    let err = s.fails("1.33", &["scale", "deployment", "web", "--replicas=2", "--resource-version=1"]);
    assert!(err.contains("Expected resource version to be 1"), "{err}");
    // A replace based on a stale object: 409 Conflict with upstream's message, nothing changed.
    let stale = s.ok("1.33", &["get", "deploy", "web", "-o", "json"]);
    assert!(stale.contains("\"replicas\": 1"));
}

#[test]
fn stale_replace_is_a_conflict() {
    let s = Server::start();
    s.ok("1.33", &["create", "configmap", "c", "--from-literal=a=1"]);
    let stale = s.ok("1.33", &["get", "cm", "c", "-o", "json"]);
    let first = stale.replace("\"a\": \"1\"", "\"a\": \"2\"");
    let out = s.kubectl_stdin("1.33", &["replace", "-f", "-"], &first);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = stale.replace("\"a\": \"1\"", "\"a\": \"3\"");
    let out = s.kubectl_stdin("1.33", &["replace", "-f", "-"], &second);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );
    assert_eq!(s.ok("1.33", &["get", "cm", "c", "-o", "jsonpath={.data.a}"]), "2", "the stale write changed nothing");
}
