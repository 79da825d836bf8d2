//! The Node object the agent registers and the status it keeps posting, as pure functions of what the agent
//! knows (upstream's initialNode and node status setters).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::conditions::{self, Health};
use crate::hostinfo;
use crate::resources::{Capacity, Reserved};

/// Upstream's `nodeStatusMaxImages`: the node lists at most this many images, largest first.
pub const MAX_IMAGES: usize = 50;

/// What the node's object and status are made of.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The node's name.
    pub name: String,
    /// Its InternalIP.
    pub ip: IpAddr,
    /// The agent API's port.
    pub kubelet_port: u16,
    /// `--node-label`s.
    pub extra_labels: BTreeMap<String, String>,
    /// `--kube-reserved`.
    pub kube_reserved: Reserved,
    /// `--system-reserved`.
    pub system_reserved: Reserved,
}

/// The well-known labels (kubelet's `updateDefaultLabels`), then the configured ones.
pub fn labels(facts: &Facts) -> BTreeMap<String, String> {
    let os = std::env::consts::OS;
    let arch = hostinfo::go_arch();
    let mut l = BTreeMap::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", os),
        ("kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", facts.name.as_str()),
        ("kubernetes.io/os", os),
    ] {
        l.insert(k.to_owned(), v.to_owned());
    }
    l.extend(facts.extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

/// The Node to create (without status: that is posted through `nodes/status`).
pub fn initial(facts: &Facts) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(facts.name.clone()),
            labels: Some(labels(facts)),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Node::default()
    }
}

/// An existing Node of our name with our labels written over it; `None` when nothing changes.
pub fn reconciled(facts: &Facts, existing: &Node) -> Option<Node> {
    let mut node = existing.clone();
    let current = node.metadata.labels.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in labels(facts) {
        if current.get(&k) != Some(&v) {
            current.insert(k, v);
            changed = true;
        }
    }
    changed.then_some(node)
}

/// The images the node reports: digests then tags of each, largest first, at most [`MAX_IMAGES`].
pub fn images(list: &[rkube_cri::api::Image]) -> Vec<ContainerImage> {
    let mut images: Vec<&rkube_cri::api::Image> = list.iter().collect();
    images.sort_by_key(|i| std::cmp::Reverse(i.size));
    images
        .into_iter()
        .take(MAX_IMAGES)
        .map(|i| ContainerImage {
            names: Some(i.repo_digests.iter().chain(&i.repo_tags).cloned().collect()),
            size_bytes: i64::try_from(i.size).ok(),
        })
        .collect()
}

/// The full status at `now`, keeping conditions' transition times from `previous`.
pub fn status(
    facts: &Facts,
    capacity: &Capacity,
    info: &NodeSystemInfo,
    images: Vec<ContainerImage>,
    health: &Health,
    now: Timestamp,
    previous: &[NodeCondition],
) -> NodeStatus {
    NodeStatus {
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: facts.ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: facts.name.clone() },
        ]),
        capacity: Some(capacity.quantities()),
        allocatable: Some(capacity.allocatable(&facts.kube_reserved, &facts.system_reserved)),
        conditions: Some(conditions::build(health, now, previous)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(facts.kubelet_port) }),
        }),
        node_info: Some(info.clone()),
        images: Some(images),
        ..NodeStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            name: "n1".into(),
            ip: "192.168.0.9".parse().unwrap(),
            kubelet_port: 10250,
            extra_labels: BTreeMap::from([("role".to_owned(), "db".to_owned())]),
            kube_reserved: Reserved::parse("cpu=100m,memory=256Mi").unwrap(),
            system_reserved: Reserved::parse("cpu=100m,memory=256Mi").unwrap(),
        }
    }

    #[test]
    fn object_and_status() {
        let n = initial(&facts());
        let l = n.metadata.labels.unwrap();
        assert_eq!(l["kubernetes.io/hostname"], "n1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["beta.kubernetes.io/arch"], hostinfo::go_arch());
        assert_eq!(l["role"], "db");
        let cap =
            Capacity { cpu_milli: 2000, memory: 4 << 30, ephemeral_storage: 10 << 30, pods: 110, ..Default::default() };
        let now = Timestamp::from_second(10).unwrap();
        let s = status(&facts(), &cap, &hostinfo::system_info(), vec![], &Health::default(), now, &[]);
        let a = s.addresses.unwrap();
        assert_eq!((a[0].type_.as_str(), a[0].address.as_str()), ("InternalIP", "192.168.0.9"));
        assert_eq!((a[1].type_.as_str(), a[1].address.as_str()), ("Hostname", "n1"));
        assert_eq!(s.allocatable.unwrap()["cpu"].0, "1800m");
        assert_eq!(s.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);
        assert_eq!(s.conditions.unwrap()[3].reason.as_deref(), Some("KubeletReady"));
    }

    #[test]
    fn reconcile_writes_our_labels_only_when_needed() {
        let f = facts();
        let mut existing = initial(&f);
        assert!(reconciled(&f, &existing).is_none());
        existing.metadata.labels.as_mut().unwrap().insert("kubernetes.io/hostname".into(), "old".into());
        existing.metadata.labels.as_mut().unwrap().insert("user".into(), "kept".into());
        let n = reconciled(&f, &existing).unwrap();
        let l = n.metadata.labels.unwrap();
        assert_eq!((l["kubernetes.io/hostname"].as_str(), l["user"].as_str()), ("n1", "kept"));
    }

    #[test]
    fn images_largest_first() {
        let img = |tag: &str, size| rkube_cri::api::Image {
            repo_tags: vec![tag.to_owned()],
            repo_digests: vec![format!("{tag}@sha256:00")],
            size,
            ..Default::default()
        };
        let list = images(&[img("a:1", 10), img("b:1", 30)]);
        assert_eq!(list[0].names.as_ref().unwrap(), &["b:1@sha256:00".to_owned(), "b:1".to_owned()]);
        assert_eq!(list[1].size_bytes, Some(10));
    }
}
