//! The labels and annotations on the pod's CRI sandbox and containers (upstream's `newPodLabels`,
//! `newContainerLabels`, `newContainerAnnotations`) and the container hash they carry.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod};
use rkube_cri::labels as cri;

/// Container annotation: the container's preStop handler (JSON), for a restarted agent killing it.
pub(crate) const PRE_STOP_HANDLER: &str = "io.kubernetes.container.preStopHandler";
/// Container annotation: the container's ports (JSON).
pub(crate) const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";
/// Container annotation: the pod's deletion grace period when it was being deleted.
pub(crate) const DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";

/// The pod's name, namespace and UID labels (on every sandbox and container of the pod).
pub(crate) fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let m = &pod.metadata;
    BTreeMap::from([
        (cri::POD_NAME.to_owned(), m.name.clone().unwrap_or_default()),
        (cri::POD_NAMESPACE.to_owned(), m.namespace.clone().unwrap_or_default()),
        (cri::POD_UID.to_owned(), m.uid.clone().unwrap_or_default()),
    ])
}

/// The sandbox's labels: the pod's own labels, then ours over them (upstream's `newPodLabels`), and
/// `io.kubernetes.container.name=POD` so the sandbox reads as the pod's infrastructure container.
pub(crate) fn sandbox_labels(pod: &Pod) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod.metadata.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(pod_labels(pod));
    labels.insert(cri::CONTAINER_NAME.to_owned(), cri::SANDBOX_CONTAINER_NAME.to_owned());
    labels
}

/// A container's labels: the pod's identity and the container's name (not the pod's own labels).
pub(crate) fn container_labels(pod: &Pod, container: &Container) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod_labels(pod).into_iter().collect();
    labels.insert(cri::CONTAINER_NAME.to_owned(), container.name.clone());
    labels
}

/// A container's annotations: hash, restart count, termination message path and policy, grace periods,
/// and the preStop handler and ports as JSON.
pub(crate) fn container_annotations(pod: &Pod, container: &Container, restart_count: i32) -> HashMap<String, String> {
    let mut a = HashMap::from([
        (cri::CONTAINER_HASH.to_owned(), container_hash(container)),
        (cri::RESTART_COUNT.to_owned(), restart_count.to_string()),
        (
            cri::TERMINATION_MESSAGE_PATH.to_owned(),
            container.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".to_owned()),
        ),
        (
            cri::TERMINATION_MESSAGE_POLICY.to_owned(),
            container.termination_message_policy.clone().unwrap_or_else(|| "File".to_owned()),
        ),
    ]);
    if let Some(g) = pod.metadata.deletion_grace_period_seconds {
        a.insert(DELETION_GRACE_PERIOD.to_owned(), g.to_string());
    }
    if let Some(g) = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds) {
        a.insert(cri::TERMINATION_GRACE_PERIOD.to_owned(), g.to_string());
    }
    if let Some(pre_stop) = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
        && let Ok(json) = serde_json::to_string(pre_stop)
    {
        a.insert(PRE_STOP_HANDLER.to_owned(), json);
    }
    if let Some(ports) = container.ports.as_ref().filter(|p| !p.is_empty())
        && let Ok(json) = serde_json::to_string(ports)
    {
        a.insert(CONTAINER_PORTS.to_owned(), json);
    }
    a
}

/// FNV-1a, 32 bits (what upstream's `fnv.New32a` computes).
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The container hash, in hex. Upstream hashes only the fields the API lets change on a running pod —
/// `name` and `image` — so a kubelet upgrade or a defaulted field never restarts containers; we hash the
/// same JSON object (`{"image":…,"name":…}`, keys sorted as Go marshals a map) with FNV-1a 32. (Upstream
/// feeds the bytes through a spew dump first, so the numbers differ from a real kubelet's; only rkube
/// reads them back.)
pub(crate) fn container_hash(container: &Container) -> String {
    let fields = BTreeMap::from([("image", container.image.as_deref().unwrap_or_default()), ("name", &container.name)]);
    let json = serde_json::to_vec(&fields).unwrap_or_default();
    format!("{:x}", fnv1a32(&json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::pod;
    use serde_json::json;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_covers_name_and_image_only() {
        let c = |v: serde_json::Value| -> Container { serde_json::from_value(v).unwrap() };
        let base = container_hash(&c(json!({"name": "a", "image": "busybox"})));
        assert_eq!(base, container_hash(&c(json!({"name": "a", "image": "busybox", "args": ["x"], "env": []}))));
        assert_ne!(base, container_hash(&c(json!({"name": "a", "image": "busybox:2"}))));
        assert_ne!(base, container_hash(&c(json!({"name": "b", "image": "busybox"}))));
        assert_eq!(base, format!("{:x}", fnv1a32(br#"{"image":"busybox","name":"a"}"#)));
    }

    #[test]
    fn labels_and_annotations() {
        let p = pod(json!({
            "metadata": {"labels": {"app": "web", "io.kubernetes.pod.name": "spoof"}, "deletionGracePeriodSeconds": 5},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"name": "a", "image": "busybox",
                "ports": [{"containerPort": 80}], "lifecycle": {"preStop": {"exec": {"command": ["stop"]}}}}]}
        }));
        let want = BTreeMap::from([
            ("io.kubernetes.pod.name".to_owned(), "web".to_owned()),
            ("io.kubernetes.pod.namespace".to_owned(), "ns".to_owned()),
            ("io.kubernetes.pod.uid".to_owned(), "1234-5678".to_owned()),
        ]);
        assert_eq!(pod_labels(&p), want);
        let s = sandbox_labels(&p);
        assert_eq!(s["app"], "web");
        assert_eq!(s["io.kubernetes.pod.name"], "web");
        assert_eq!(s["io.kubernetes.container.name"], "POD");
        let c = &p.spec.as_ref().unwrap().containers[0];
        let l = container_labels(&p, c);
        assert_eq!(l.len(), 4);
        assert_eq!(l["io.kubernetes.container.name"], "a");
        let a = container_annotations(&p, c, 3);
        assert_eq!(a["io.kubernetes.container.restartCount"], "3");
        assert_eq!(a["io.kubernetes.container.hash"], container_hash(c));
        assert_eq!(a["io.kubernetes.container.terminationMessagePath"], "/dev/termination-log");
        assert_eq!(a["io.kubernetes.container.terminationMessagePolicy"], "File");
        assert_eq!(a["io.kubernetes.pod.terminationGracePeriod"], "30");
        assert_eq!(a["io.kubernetes.pod.deletionGracePeriod"], "5");
        assert_eq!(a["io.kubernetes.container.preStopHandler"], r#"{"exec":{"command":["stop"]}}"#);
        assert_eq!(a["io.kubernetes.container.ports"], r#"[{"containerPort":80}]"#);
    }
}
