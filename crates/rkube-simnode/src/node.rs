//! The Node object a kubelet would register and the status it keeps up to date, as pure functions of the
//! configuration and the clock.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::config::SimConfig;
use crate::ipam::node_ip;

/// The label every simulated node carries.
pub const SIMULATED_LABEL: &str = "node.rkube.io/simulated";

/// The kubelet's four node conditions when all is well, in upstream's order: (type, reason, message).
const HEALTHY: [(&str, &str, &str, &str); 4] = [
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
];

/// The labels of node `name`: the kubelet's well-known ones, then the configured ones.
pub(crate) fn labels(config: &SimConfig, name: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        (SIMULATED_LABEL, "true"),
    ] {
        l.insert(k.to_owned(), v.to_owned());
    }
    l.extend(config.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

/// Capacity (and allocatable: a simulated node reserves nothing).
fn capacity(config: &SimConfig) -> BTreeMap<String, Quantity> {
    [
        ("cpu", config.cpu.as_str()),
        ("ephemeral-storage", config.ephemeral_storage.as_str()),
        ("hugepages-1Gi", "0"),
        ("hugepages-2Mi", "0"),
        ("memory", config.memory.as_str()),
        ("pods", config.pods.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
    .collect()
}

/// A stable fake id (32 hex digits) for `what` of node `name`.
fn fake_id(name: &str, what: &str) -> String {
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let mut h = DefaultHasher::new();
        (name, what, i).hash(&mut h);
        *p = h.finish();
    }
    format!("{:016x}{:016x}", parts[0], parts[1])
}

/// The node's conditions at `now`: healthy, keeping each condition's `lastTransitionTime` from `previous`
/// when its status did not change.
pub(crate) fn conditions(now: Timestamp, previous: &[NodeCondition]) -> Vec<NodeCondition> {
    HEALTHY
        .iter()
        .map(|(type_, status, reason, message)| {
            let transition = previous
                .iter()
                .find(|c| c.type_ == *type_ && c.status == *status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            NodeCondition {
                type_: (*type_).to_owned(),
                status: (*status).to_owned(),
                reason: Some((*reason).to_owned()),
                message: Some((*message).to_owned()),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: Some(transition),
            }
        })
        .collect()
}

/// Whether the node's status must be written now: a condition differs from the healthy one (someone, e.g. the
/// node lifecycle controller, changed it), or the last heartbeat is `report_every` old.
pub(crate) fn needs_status_update(actual: &[NodeCondition], now: Timestamp, report_every_secs: i64) -> bool {
    HEALTHY.iter().any(|(type_, status, reason, _)| {
        let Some(c) = actual.iter().find(|c| c.type_ == *type_) else { return true };
        if c.status != *status || c.reason.as_deref() != Some(*reason) {
            return true;
        }
        let beat = c.last_heartbeat_time.as_ref().map_or(0, |t| t.0.as_second());
        now.as_second() - beat >= report_every_secs
    })
}

/// The full status of node `index` at `now`.
pub(crate) fn status(
    config: &SimConfig,
    index: usize,
    kubelet_version: &str,
    now: Timestamp,
    previous: &[NodeCondition],
) -> NodeStatus {
    let name = config.node_name(index);
    let cap = capacity(config);
    NodeStatus {
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: node_ip(index).to_string() },
            NodeAddress { type_: "Hostname".into(), address: name.clone() },
        ]),
        allocatable: Some(cap.clone()),
        capacity: Some(cap),
        conditions: Some(conditions(now, previous)),
        daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }) }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: fake_id(&name, "boot"),
            container_runtime_version: "sim://0".into(),
            kernel_version: "6.1.0-sim".into(),
            kube_proxy_version: String::new(),
            kubelet_version: kubelet_version.to_owned(),
            machine_id: fake_id(&name, "machine"),
            operating_system: "linux".into(),
            os_image: "rkube simulated node".into(),
            system_uuid: fake_id(&name, "system"),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The Node to create for index `index`.
pub(crate) fn build(config: &SimConfig, index: usize, kubelet_version: &str, now: Timestamp) -> Node {
    let name = config.node_name(index);
    Node {
        metadata: ObjectMeta {
            labels: Some(labels(config, &name)),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                "true".to_owned(),
            )])),
            name: Some(name),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..NodeSpec::default()
        }),
        status: Some(status(config, index, kubelet_version, now, &[])),
    }
}

/// `existing` (a node of the same name registered earlier) adopted: our labels set over its own, our taints
/// replacing those with the same key and effect, everything else (podCIDR, other taints) kept. `None` when
/// nothing needs to change.
pub(crate) fn take_over(config: &SimConfig, existing: &Node) -> Option<Node> {
    let mut node = existing.clone();
    let name = node.metadata.name.clone().unwrap_or_default();
    let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(self::labels(config, &name));
    let spec = node.spec.get_or_insert_with(NodeSpec::default);
    let mut taints: Vec<_> = spec
        .taints
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !config.taints.iter().any(|o| o.key == t.key && o.effect == t.effect))
        .collect();
    taints.extend(config.taints.iter().cloned());
    spec.taints = (!taints.is_empty()).then_some(taints);
    if node.metadata.labels == existing.metadata.labels && node.spec == existing.spec {
        return None;
    }
    node.status = None;
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_taint;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn builds_a_ready_node() {
        let mut config = SimConfig::default();
        config.labels.insert("zone".into(), "a".into());
        config.taints.push(parse_taint("dedicated=sim:NoSchedule").unwrap());
        let node = build(&config, 3, "v1.33.0", ts(1000));
        assert_eq!(node.metadata.name.as_deref(), Some("sim-3"));
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-3");
        assert_eq!(labels["node.rkube.io/simulated"], "true");
        assert_eq!(labels["zone"], "a");
        assert_eq!(node.spec.as_ref().unwrap().taints.as_ref().unwrap()[0].key, "dedicated");
        let status = node.status.unwrap();
        assert_eq!(status.capacity, status.allocatable);
        assert_eq!(status.capacity.as_ref().unwrap()["memory"].0, "256Gi");
        assert_eq!(status.addresses.as_ref().unwrap()[0].address, "10.200.0.4");
        let info = status.node_info.unwrap();
        assert_eq!((info.kubelet_version.as_str(), info.container_runtime_version.as_str()), ("v1.33.0", "sim://0"));
        assert_eq!(info.machine_id.len(), 32);
        let conds = status.conditions.unwrap();
        let types: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
        let ready = &conds[3];
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(conds[1].reason.as_deref(), Some("KubeletHasNoDiskPressure"));
    }

    #[test]
    fn keeps_transition_times_and_reports_only_when_due() {
        let first = conditions(ts(1000), &[]);
        assert!(!needs_status_update(&first, ts(1100), 300));
        assert!(needs_status_update(&first, ts(1300), 300), "heartbeat due after 5 minutes");
        let later = conditions(ts(1300), &first);
        assert_eq!(later[3].last_transition_time, Some(Time(ts(1000))));
        assert_eq!(later[3].last_heartbeat_time, Some(Time(ts(1300))));
        let mut unknown = first.clone();
        unknown[3].status = "Unknown".into();
        unknown[3].reason = Some("NodeStatusUnknown".into());
        assert!(needs_status_update(&unknown, ts(1001), 300), "a condition someone changed is put right");
        let back = conditions(ts(1002), &unknown);
        assert_eq!(back[3].last_transition_time, Some(Time(ts(1002))));
        assert!(needs_status_update(&first[..3], ts(1001), 300), "a missing condition is written");
    }

    #[test]
    fn takes_over_an_existing_node() {
        let mut config = SimConfig::default();
        let mut existing = build(&config, 0, "v1", ts(1));
        assert!(take_over(&config, &existing).is_none(), "nothing to change");
        existing.metadata.labels.as_mut().unwrap().insert("other".into(), "x".into());
        existing.spec.as_mut().unwrap().pod_cidr = Some("10.244.0.0/24".into());
        existing.spec.as_mut().unwrap().taints = Some(vec![
            parse_taint("node.kubernetes.io/unreachable:NoExecute").unwrap(),
            parse_taint("dedicated=old:NoSchedule").unwrap(),
        ]);
        config.taints.push(parse_taint("dedicated=new:NoSchedule").unwrap());
        config.labels.insert("zone".into(), "b".into());
        let node = take_over(&config, &existing).unwrap();
        let labels = node.metadata.labels.unwrap();
        assert_eq!((labels["other"].as_str(), labels["zone"].as_str()), ("x", "b"));
        let spec = node.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.0.0/24"));
        let taints: Vec<_> = spec.taints.unwrap().into_iter().map(|t| (t.key, t.value)).collect();
        assert_eq!(taints, [("node.kubernetes.io/unreachable".into(), None), ("dedicated".into(), Some("new".into()))]);
    }
}
