//! Tests of the sandbox config.

use super::*;
use crate::spec::testutil::{config, pod};
use serde_json::json;

fn build(over: serde_json::Value) -> (PodSandboxConfig, Vec<Warning>) {
    let mut warnings = Vec::new();
    let s = sandbox_config(&pod(over), &config(), 1, &HostDns::default(), &mut warnings).unwrap();
    (s, warnings)
}

#[test]
fn metadata_hostname_logs_labels() {
    let (s, warnings) = build(json!({"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}}}));
    assert!(warnings.is_empty());
    let m = s.metadata.unwrap();
    assert_eq!((m.name.as_str(), m.namespace.as_str(), m.uid.as_str(), m.attempt), ("web", "ns", "1234-5678", 1));
    assert_eq!(s.hostname, "web");
    assert_eq!(s.log_directory, "/var/log/pods/ns_web_1234-5678");
    assert_eq!(s.labels["app"], "web");
    assert_eq!(s.labels["io.kubernetes.pod.uid"], "1234-5678");
    assert_eq!(s.annotations["a"], "b");
    let dns = s.dns_config.unwrap();
    assert_eq!(dns.servers, ["10.96.0.10"]);
    assert_eq!(dns.searches, ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    assert_eq!(dns.options, ["ndots:5"]);
}

#[test]
fn hostnames() {
    assert_eq!(build(json!({"spec": {"hostname": "h", "subdomain": "s"}})).0.hostname, "h");
    assert_eq!(
        build(json!({"spec": {"hostname": "h", "subdomain": "s", "setHostnameAsFQDN": true}})).0.hostname,
        "h.s.ns.svc.cluster.local"
    );
    assert_eq!(build(json!({"spec": {"hostNetwork": true, "hostname": "h"}})).0.hostname, "");
    let mut w = Vec::new();
    let err = sandbox_config(&pod(json!({"spec": {"hostname": "-x"}})), &config(), 0, &HostDns::default(), &mut w);
    assert!(err.unwrap_err().to_string().starts_with("pod Hostname \"-x\" is not a valid DNS label"));
}

#[test]
fn cgroup_parents() {
    let guaranteed =
        json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
    let burstable = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
    let cases = [
        (guaranteed, "/kubepods/pod1234-5678", "/kubepods.slice/kubepods-pod1234_5678.slice"),
        (
            burstable,
            "/kubepods/burstable/pod1234-5678",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice",
        ),
        (
            json!({}),
            "/kubepods/besteffort/pod1234-5678",
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_5678.slice",
        ),
    ];
    for (over, cgroupfs, systemd) in cases {
        let p = pod(over);
        assert_eq!(cgroup_parent(&p, false), cgroupfs);
        assert_eq!(cgroup_parent(&p, true), systemd);
    }
    let mut cfg = config();
    cfg.systemd_cgroup = true;
    let s = sandbox_config(&pod(json!({})), &cfg, 0, &HostDns::default(), &mut Vec::new()).unwrap();
    assert_eq!(
        s.linux.unwrap().cgroup_parent,
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_5678.slice"
    );
}

#[test]
fn port_mappings_from_all_container_ports() {
    let (s, _) = build(json!({"spec": {"containers": [
        {"name": "a", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "127.0.0.1"},
            {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "127.0.0.1"},
            {"containerPort": 9000}
        ]},
        {"name": "b", "ports": [{"containerPort": 7000, "protocol": "SCTP", "name": "sctp"}]}
    ]}}));
    let got: Vec<(i32, i32, i32, &str)> =
        s.port_mappings.iter().map(|p| (p.protocol, p.container_port, p.host_port, p.host_ip.as_str())).collect();
    assert_eq!(got, [(0, 80, 8080, ""), (1, 53, 5353, "127.0.0.1"), (0, 9000, 0, ""), (2, 7000, 0, "")]);
}

#[test]
fn namespaces() {
    let mode = |over: serde_json::Value| {
        let n = namespace_options(&pod(over));
        (n.network, n.pid, n.ipc)
    };
    let (pod_ns, container, node) =
        (NamespaceMode::Pod as i32, NamespaceMode::Container as i32, NamespaceMode::Node as i32);
    assert_eq!(mode(json!({})), (pod_ns, container, pod_ns));
    assert_eq!(mode(json!({"spec": {"hostNetwork": true}})), (node, container, pod_ns));
    assert_eq!(mode(json!({"spec": {"hostPID": true, "hostIPC": true}})), (pod_ns, node, node));
    assert_eq!(mode(json!({"spec": {"shareProcessNamespace": true}})), (pod_ns, pod_ns, pod_ns));
}

#[test]
fn linux_security_and_sysctls() {
    let (s, _) = build(json!({"spec": {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000],
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
        "containers": [{"name": "a", "securityContext": {"privileged": true}}]
    }}));
    let linux = s.linux.unwrap();
    assert_eq!(linux.sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
    let sc = linux.security_context.unwrap();
    assert_eq!(sc.run_as_user.unwrap().value, 1000);
    assert_eq!(sc.run_as_group.unwrap().value, 3000);
    assert_eq!(sc.supplemental_groups, [2000, 4000]);
    assert!(sc.privileged);
    assert_eq!(sc.seccomp.unwrap().profile_type, ProfileType::RuntimeDefault as i32);
    assert_eq!(sc.namespace_options.unwrap().network, NamespaceMode::Pod as i32);

    let (s, _) = build(json!({}));
    let sc = s.linux.unwrap().security_context.unwrap();
    assert!(!sc.privileged && sc.run_as_user.is_none() && sc.supplemental_groups.is_empty());
}
