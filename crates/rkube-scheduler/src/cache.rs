//! The scheduler's view of the cluster: nodes, the pods bound to them (and "assumed" pods the scheduler
//! has picked a node for before the bind returned), with per-node aggregates (requested resources, host
//! ports, pods with affinity terms) kept up to date so that a filter costs O(1) per node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::podinfo::{HostPort, NamespaceLabels, PodInfo};
use crate::resources::{Resources, node_allocatable};

/// One node and what is placed on it.
#[derive(Clone, Debug)]
pub(crate) struct NodeInfo {
    pub(crate) node: Arc<Node>,
    pub(crate) name: String,
    pub(crate) allocatable: Resources,
    pub(crate) allowed_pods: i64,
    pub(crate) requested: Resources,
    /// (cpu, memory) requested with scoring's defaults.
    pub(crate) non_zero_requested: (i64, i64),
    pub(crate) pods: Vec<Arc<PodInfo>>,
    pub(crate) used_ports: Vec<HostPort>,
    /// Pods here with any pod (anti-)affinity term.
    pub(crate) pods_with_affinity: Vec<Arc<PodInfo>>,
    /// Pods here with required anti-affinity terms.
    pub(crate) pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Normalized image name → size in bytes.
    pub(crate) images: HashMap<String, i64>,
    /// Namespace → how many of `pods` are in it: spreading counts only pods of the incoming pod's namespace,
    /// and most nodes have none of them, so they are skipped without looking at their pods.
    pub(crate) namespaces: HashMap<String, usize>,
    /// Whether the node has the `kubernetes.io/hostname` and `topology.kubernetes.io/zone` labels: read for
    /// every scored node of every pod (spreading's system defaults), and the labels themselves are several heap
    /// hops away, so with thousands of nodes each lookup is a cache miss.
    pub(crate) has_hostname: bool,
    pub(crate) has_zone: bool,
    /// `spec.unschedulable`, and whether `spec.taints` is non-empty: the first filters of every pod read them on
    /// every node, and most nodes are neither cordoned nor tainted (the same cache misses as the labels).
    pub(crate) unschedulable: bool,
    pub(crate) has_taints: bool,
}

/// The label spreading's system default uses for hostnames.
pub(crate) const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The label spreading's system default uses for zones.
pub(crate) const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl NodeInfo {
    /// A node with no pods.
    pub(crate) fn new(node: Arc<Node>) -> NodeInfo {
        let (allocatable, allowed_pods) = node_allocatable(&node);
        let mut images = HashMap::new();
        for img in node.status.iter().flat_map(|s| s.images.iter().flatten()) {
            for name in img.names.iter().flatten() {
                images.insert(normalize_image(name), img.size_bytes.unwrap_or(0));
            }
        }
        let labels = node.metadata.labels.as_ref();
        let (has_hostname, has_zone) = (
            labels.is_some_and(|l| l.contains_key(HOSTNAME_LABEL)),
            labels.is_some_and(|l| l.contains_key(ZONE_LABEL)),
        );
        let spec = node.spec.as_ref();
        NodeInfo {
            has_hostname,
            has_zone,
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            has_taints: spec.and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty()),
            name: node.metadata.name.clone().unwrap_or_default(),
            node,
            allocatable,
            allowed_pods,
            requested: Resources::default(),
            non_zero_requested: (0, 0),
            pods: Vec::new(),
            used_ports: Vec::new(),
            pods_with_affinity: Vec::new(),
            pods_with_required_anti_affinity: Vec::new(),
            images,
            namespaces: HashMap::new(),
        }
    }

    /// Whether the node has label `key` (the two spreading keys without touching the labels).
    pub(crate) fn has_label(&self, key: &str) -> bool {
        match key {
            HOSTNAME_LABEL => self.has_hostname,
            ZONE_LABEL => self.has_zone,
            _ => self.labels().contains_key(key),
        }
    }

    /// Whether any pod here is in `namespace`.
    pub(crate) fn has_pods_in(&self, namespace: &str) -> bool {
        self.namespaces.contains_key(namespace)
    }

    /// The node's labels.
    pub(crate) fn labels(&self) -> &BTreeMap<String, String> {
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }

    /// Places `pod` here.
    pub(crate) fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.0 += pod.non_zero.0;
        self.non_zero_requested.1 += pod.non_zero.1;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        *self.namespaces.entry(pod.namespace.clone()).or_default() += 1;
        self.pods.push(pod);
    }

    /// Takes the pod with `uid` off this node; false when it was not here.
    pub(crate) fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else { return false };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.0 -= pod.non_zero.0;
        self.non_zero_requested.1 -= pod.non_zero.1;
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        self.pods_with_affinity.retain(|p| p.uid != uid);
        self.pods_with_required_anti_affinity.retain(|p| p.uid != uid);
        if let Some(n) = self.namespaces.get_mut(&pod.namespace) {
            *n -= 1;
            if *n == 0 {
                self.namespaces.remove(&pod.namespace);
            }
        }
        true
    }

    /// Replaces the node object, keeping its pods.
    fn set_node(&mut self, node: Arc<Node>) {
        let mut fresh = NodeInfo::new(node);
        for p in self.pods.drain(..) {
            fresh.add_pod(p);
        }
        *self = fresh;
    }
}

/// Upstream's image name normalization: a missing tag is `:latest`, a bare name lives in `docker.io/library`.
pub(crate) fn normalize_image(name: &str) -> String {
    let (repo, digest) = match name.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (name, None),
    };
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let mut repo = repo.to_owned();
    if digest.is_none() && !last.contains(':') {
        repo.push_str(":latest");
    }
    let first = repo.split('/').next().unwrap_or("");
    let has_domain = repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    if let Some(d) = digest {
        full = format!("{full}@{d}");
    }
    full
}

/// Where a pod the cache knows about sits.
#[derive(Debug)]
struct PlacedPod {
    node: String,
    info: Arc<PodInfo>,
    assumed: bool,
}

/// Nodes and placed pods.
#[derive(Default)]
pub(crate) struct Cache {
    pub(crate) nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<String, PlacedPod>,
    /// Pods placed on nodes the cache does not know (yet): added when the node appears.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Normalized image → how many nodes have it.
    pub(crate) image_nodes: HashMap<String, usize>,
    /// Namespace labels, for `namespaceSelector`.
    pub(crate) namespaces: NamespaceLabels,
    /// How many placed pods have any pod (anti-)affinity term (0: plugins skip the scan).
    pub(crate) affinity_pods: usize,
    /// Namespace → `kind/name` → the selector of a Service, ReplicationController, ReplicaSet or
    /// StatefulSet (PodTopologySpread's system default constraints spread the pods they select).
    pub(crate) owner_selectors: HashMap<String, HashMap<String, kube::core::Selector>>,
}

impl Cache {
    /// The node called `name`.
    pub(crate) fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// The position of node `name` in [`Cache::nodes`].
    pub(crate) fn node_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Adds or updates a node; true when a property scheduling depends on changed (or it is new).
    pub(crate) fn upsert_node(&mut self, node: Arc<Node>) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.index.get(&name) {
            Some(&i) => {
                let changed = scheduling_properties_changed(&self.nodes[i].node, &node);
                self.count_images(i, -1);
                self.nodes[i].set_node(node);
                self.count_images(i, 1);
                changed
            }
            None => {
                let mut info = NodeInfo::new(node);
                for p in self.orphans.remove(&name).into_iter().flatten() {
                    info.add_pod(p);
                }
                self.nodes.push(info);
                let i = self.nodes.len() - 1;
                self.index.insert(name, i);
                self.count_images(i, 1);
                true
            }
        }
    }

    fn count_images(&mut self, i: usize, delta: isize) {
        for img in self.nodes[i].images.keys() {
            let e = self.image_nodes.entry(img.clone()).or_insert(0);
            *e = e.saturating_add_signed(delta);
            if *e == 0 {
                self.image_nodes.remove(img);
            }
        }
    }

    /// Removes a node; its pods wait as orphans in case it comes back.
    pub(crate) fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else { return };
        self.count_images(i, -1);
        let info = self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name.clone();
            self.index.insert(moved, i);
        }
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_owned(), info.pods);
        }
    }

    /// Whether the pod with `uid` is assumed (picked, bind not yet seen).
    pub(crate) fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|p| p.assumed)
    }

    /// The node a known pod is placed on.
    pub(crate) fn pod_node(&self, uid: &str) -> Option<&str> {
        self.pods.get(uid).map(|p| p.node.as_str())
    }

    /// Places `pod` on `node` before its binding is confirmed.
    pub(crate) fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.place(pod, node, true);
    }

    /// Undoes an assumption (the bind failed).
    pub(crate) fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|p| p.assumed) {
            self.remove_pod(uid);
        }
    }

    /// Records a pod the API says is bound to `node` (confirming an assumption, or a move).
    pub(crate) fn add_or_update_bound(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.place(pod, node, false);
    }

    fn place(&mut self, pod: Arc<PodInfo>, node: &str, assumed: bool) {
        self.remove_pod(&pod.uid);
        if pod.has_affinity() {
            self.affinity_pods += 1;
        }
        match self.index.get(node) {
            Some(&i) => self.nodes[i].add_pod(pod.clone()),
            None => self.orphans.entry(node.to_owned()).or_default().push(pod.clone()),
        }
        self.pods.insert(pod.uid.clone(), PlacedPod { node: node.to_owned(), info: pod, assumed });
    }

    /// Removes a pod wherever it is placed; returns the node it was on.
    pub(crate) fn remove_pod(&mut self, uid: &str) -> Option<String> {
        let placed = self.pods.remove(uid)?;
        if placed.info.has_affinity() {
            self.affinity_pods -= 1;
        }
        match self.index.get(&placed.node) {
            Some(&i) => {
                self.nodes[i].remove_pod(uid);
            }
            None => {
                if let Some(list) = self.orphans.get_mut(&placed.node) {
                    list.retain(|p| p.uid != uid);
                }
            }
        }
        Some(placed.node)
    }

    /// Uids of every placed pod (for resynchronising after a relist).
    pub(crate) fn pod_uids(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }
}

/// Upstream's test for a node update that may make unschedulable pods schedulable: allocatable, labels,
/// taints, unschedulable or conditions changed (heartbeats aside).
fn scheduling_properties_changed(old: &Node, new: &Node) -> bool {
    let (os, ns) = (old.spec.as_ref(), new.spec.as_ref());
    let conds = |n: &Node| -> Vec<(String, String)> {
        n.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect()
    };
    old.metadata.labels != new.metadata.labels
        || os.and_then(|s| s.taints.as_ref()) != ns.and_then(|s| s.taints.as_ref())
        || os.and_then(|s| s.unschedulable) != ns.and_then(|s| s.unschedulable)
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref())
            != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
        || conds(old) != conds(new)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    /// A node from JSON with `allocatable` as given (tests across the crate use this).
    pub(crate) fn node(name: &str, allocatable: serde_json::Value, extra: serde_json::Value) -> NodeInfo {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": allocatable}});
        if let serde_json::Value::Object(m) = extra {
            for (k, val) in m {
                if let (Some(dst), serde_json::Value::Object(src)) = (v[k.as_str()].as_object_mut(), &val) {
                    for (k2, v2) in src {
                        dst.insert(k2.clone(), v2.clone());
                    }
                } else {
                    v[k.as_str()] = val;
                }
            }
        }
        NodeInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
    }

    #[test]
    fn aggregates_follow_pods_added_and_removed() {
        let mut n = node("n", json!({"cpu": "4", "memory": "8Gi", "pods": "110"}), json!({}));
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}, "ports": [{"containerPort": 1, "hostPort": 80}]}]}}));
        n.add_pod(p.clone());
        assert_eq!(n.requested.milli_cpu, 1000);
        assert_eq!(n.used_ports.len(), 1);
        assert!(n.remove_pod(&p.uid));
        assert_eq!(n.requested, Resources::default());
        assert!(n.used_ports.is_empty());
        assert_eq!(n.allowed_pods, 110);
    }

    #[test]
    fn namespace_counts_follow_pods_added_and_removed() {
        let mut n = node("n", json!({"cpu": "4"}), json!({}));
        let a1 = pod(json!({"metadata": {"name": "a1", "namespace": "a"}}));
        let a2 = pod(json!({"metadata": {"name": "a2", "namespace": "a"}}));
        let b = pod(json!({"metadata": {"name": "b", "namespace": "b"}}));
        for p in [&a1, &a2, &b] {
            n.add_pod(p.clone());
        }
        assert!(n.has_pods_in("a") && n.has_pods_in("b") && !n.has_pods_in("c"));
        assert!(n.remove_pod(&a1.uid));
        assert!(n.has_pods_in("a"), "a2 is still there");
        assert!(n.remove_pod(&a2.uid) && !n.remove_pod(&a2.uid));
        assert!(!n.has_pods_in("a") && n.has_pods_in("b"));
    }

    #[test]
    fn assumed_pods_are_forgotten_and_node_removal_keeps_index_consistent() {
        let mut c = Cache::default();
        for name in ["a", "b", "c"] {
            c.upsert_node(Arc::new(node(name, json!({"cpu": "1"}), json!({})).node.as_ref().clone()));
        }
        let p = pod(json!({"metadata": {"name": "x"}}));
        c.assume(p.clone(), "b");
        assert!(c.is_assumed(&p.uid));
        assert_eq!(c.node("b").unwrap().pods.len(), 1);
        c.forget(&p.uid);
        assert_eq!(c.node("b").unwrap().pods.len(), 0);
        c.add_or_update_bound(p.clone(), "c");
        c.remove_node("a");
        assert_eq!(c.node("c").unwrap().pods.len(), 1);
        assert_eq!(c.node_index("c").map(|i| c.nodes[i].name.as_str()), Some("c"));
        assert_eq!(c.remove_pod(&p.uid).as_deref(), Some("c"));
    }

    #[test]
    fn images_normalize_like_upstream() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("foo/bar:1"), "docker.io/foo/bar:1");
        assert_eq!(normalize_image("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
    }
}
