//! Fixtures for the spec tests: pods from JSON over a small base pod, and a kubelet config.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::KubeletConfig;

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// A pod `web` in namespace `ns` with UID `1234-5678` and one container `a`, with `over` merged in
/// (objects merge key by key; anything else replaces).
pub(crate) fn pod(over: Value) -> Pod {
    let mut base = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "ns", "uid": "1234-5678"},
        "spec": {"containers": [{"name": "a", "image": "busybox"}], "nodeName": "node1"}
    });
    merge(&mut base, over);
    serde_json::from_value(base).expect("a valid pod")
}

/// A kubelet config: node `node1` at 10.0.0.5, cluster DNS 10.96.0.10, domain `cluster.local`.
pub(crate) fn config() -> KubeletConfig {
    KubeletConfig {
        node_name: "node1".into(),
        node_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
        root_dir: PathBuf::from("/var/lib/rkube"),
        pod_logs_dir: PathBuf::from("/var/log/pods"),
        cluster_dns: vec![IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10))],
        cluster_domain: "cluster.local".into(),
        resolv_conf: PathBuf::from("/nonexistent/resolv.conf"),
        pause_image: "rkube/pause:1".into(),
        systemd_cgroup: false,
    }
}
