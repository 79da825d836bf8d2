//! Rows of the core kinds in `core.rs` against hand-written objects.

use serde_json::json;

use crate::tests_support::{ago, at};

#[test]
fn node_status_roles_and_wide() {
    let now = at("2024-01-01T00:00:00Z");
    let node = json!({
        "metadata": {"name": "node-1", "creationTimestamp": ago(now, 5 * 86400),
                     "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true",
                                "kubernetes.io/role": "master", "kubernetes.io/hostname": "node-1"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
        }
    });
    assert_eq!(
        crate::cells("", "nodes", &node, now),
        vec![
            json!("node-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,etcd,master"),
            json!("5d"),
            json!("v1.33.0"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("containerd://1.7.13"),
        ]
    );
    let bare = json!({"metadata": {"name": "n"}});
    assert_eq!(
        crate::cells("", "nodes", &bare, now),
        vec![
            json!("n"),
            json!("Unknown"),
            json!("<none>"),
            json!("<unknown>"),
            json!(""),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>"),
        ]
    );
    let not_ready =
        json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(crate::cells("", "nodes", &not_ready, now)[1], json!("NotReady"));
}

#[test]
fn namespaces_configmaps_secrets_service_accounts() {
    let now = at("2024-01-01T00:00:00Z");
    let ns =
        json!({"metadata": {"name": "dev", "creationTimestamp": ago(now, 45)}, "status": {"phase": "Terminating"}});
    assert_eq!(crate::cells("", "namespaces", &ns, now), vec![json!("dev"), json!("Terminating"), json!("45s")]);
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(crate::cells("", "configmaps", &cm, now), vec![json!("cfg"), json!(3), json!("<unknown>")]);
    let secret =
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        crate::cells("", "secrets", &secret, now),
        vec![json!("tls"), json!("kubernetes.io/tls"), json!(2), json!("<unknown>")]
    );
    let opaque = json!({"metadata": {"name": "s"}});
    assert_eq!(crate::cells("", "secrets", &opaque, now)[1..3], [json!("Opaque"), json!(0)]);
    let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
    assert_eq!(crate::cells("", "serviceaccounts", &sa, now), vec![json!("default"), json!(1), json!("<unknown>")]);
}

#[test]
fn pod_templates_and_replication_controllers() {
    let now = at("2024-01-01T00:00:00Z");
    let pt = json!({
        "metadata": {"name": "tpl"},
        "template": {"metadata": {"labels": {"run": "x", "app": "y"}},
                     "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]}}
    });
    assert_eq!(
        crate::cells("", "podtemplates", &pt, now),
        vec![json!("tpl"), json!("a,b"), json!("nginx,redis"), json!("app=y,run=x")]
    );
    let rc = json!({
        "metadata": {"name": "rc", "creationTimestamp": ago(now, 600)},
        "spec": {"replicas": 3, "selector": {"app": "web"}, "template": {"spec": {"containers": [{"name": "w", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2}
    });
    assert_eq!(
        crate::cells("", "replicationcontrollers", &rc, now),
        vec![json!("rc"), json!(3), json!(3), json!(2), json!("10m"), json!("w"), json!("nginx"), json!("app=web")]
    );
}

#[test]
fn resource_quota_request_and_limit() {
    let now = at("2024-01-01T00:00:00Z");
    let quota = json!({
        "metadata": {"name": "compute"},
        "status": {
            "hard": {"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2048Mi"},
            "used": {"pods": "3", "requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1000m"}
        }
    });
    assert_eq!(
        crate::cells("", "resourcequotas", &quota, now),
        vec![
            json!("compute"),
            json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi"),
            json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
            json!("<unknown>"),
        ]
    );
    let empty = json!({"metadata": {"name": "q"}});
    assert_eq!(crate::cells("", "resourcequotas", &empty, now)[1..3], [json!(""), json!("")]);
}

#[test]
fn limit_ranges_use_the_default_table() {
    let now = at("2024-01-01T00:00:00Z");
    let cols = crate::columns("", "limitranges");
    assert_eq!(
        cols.iter().map(|c| (c.name.as_str(), c.type_.as_str())).collect::<Vec<_>>(),
        [("Name", "string"), ("Created At", "date")]
    );
    let lr = json!({"metadata": {"name": "limits", "creationTimestamp": "2023-12-31T23:00:00Z"}});
    assert_eq!(crate::cells("", "limitranges", &lr, now), vec![json!("limits"), json!("2023-12-31T23:00:00Z")]);
}
