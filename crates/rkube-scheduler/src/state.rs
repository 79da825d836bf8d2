//! The scheduler's shared state: the cache, the queue, nominations and PDBs behind one lock, and how
//! watch events change them (which pods are ours, assumed pods confirmed, cluster events requeueing
//! unschedulable pods).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::cache::Cache;
use crate::podinfo::PodInfo;
use crate::preemption::Pdb;
use crate::queue::{ClusterEvent, SchedulingQueue};
use crate::schedule::{Nominations, Picker};

/// The scheduler name this scheduler answers to.
pub(crate) const SCHEDULER_NAME: &str = "default-scheduler";

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) cache: Cache,
    pub(crate) queue: SchedulingQueue,
    /// Node → pods nominated there by preemption.
    pub(crate) nominations: Nominations,
    /// Pod uid → the node it is nominated to.
    nominated: HashMap<String, String>,
    pub(crate) pdbs: HashMap<String, Pdb>,
    pub(crate) picker: Picker,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether this scheduler should place `pod`.
pub(crate) fn responsible(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or(SCHEDULER_NAME) == SCHEDULER_NAME
        && spec.and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

impl State {
    pub(crate) fn new(seed: u64) -> State {
        State {
            cache: Cache::default(),
            queue: SchedulingQueue::default(),
            nominations: Nominations::new(),
            nominated: HashMap::new(),
            pdbs: HashMap::new(),
            picker: Picker::new(seed),
        }
    }

    /// Records that `pod` waits for room on `node` (preemption).
    pub(crate) fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.clear_nomination(&pod.uid);
        self.nominated.insert(pod.uid.clone(), node.to_owned());
        self.nominations.entry(node.to_owned()).or_default().push(pod);
    }

    /// Drops a pod's nomination.
    pub(crate) fn clear_nomination(&mut self, uid: &str) {
        if let Some(node) = self.nominated.remove(uid)
            && let Some(list) = self.nominations.get_mut(&node)
        {
            list.retain(|p| p.uid != uid);
            if list.is_empty() {
                self.nominations.remove(&node);
            }
        }
    }

    /// A pod was added or changed.
    pub(crate) fn pod_applied(&mut self, pod: Arc<Pod>) {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match node {
            Some(node) => {
                self.queue.delete(&uid);
                self.clear_nomination(&uid);
                if is_terminal(&pod) {
                    if self.cache.remove_pod(&uid).is_some() {
                        self.queue.move_all(ClusterEvent::Any);
                    }
                    return;
                }
                let was = self.cache.pod_node(&uid).map(str::to_owned);
                let assumed = self.cache.is_assumed(&uid);
                self.cache.add_or_update_bound(Arc::new(PodInfo::new(pod)), &node);
                if was.as_deref() != Some(node.as_str()) && !assumed {
                    self.queue.move_all(ClusterEvent::AssignedPodAdded);
                }
            }
            None => {
                if self.cache.is_assumed(&uid) {
                    // Our own bind is in flight; this is an older version of the pod (or our status write).
                    return;
                }
                if self.cache.remove_pod(&uid).is_some() {
                    self.queue.move_all(ClusterEvent::Any);
                }
                if responsible(&pod) {
                    self.queue.add_or_update(Arc::new(PodInfo::new(pod)));
                } else {
                    self.queue.delete(&uid);
                    self.clear_nomination(&uid);
                }
            }
        }
    }

    /// A pod was deleted.
    pub(crate) fn pod_deleted(&mut self, uid: &str) {
        self.queue.delete(uid);
        self.clear_nomination(uid);
        if self.cache.remove_pod(uid).is_some() {
            self.queue.move_all(ClusterEvent::Any);
        }
    }

    /// A node was added or changed.
    pub(crate) fn node_applied(&mut self, node: Arc<Node>) {
        if self.cache.upsert_node(node) {
            self.queue.move_all(ClusterEvent::Any);
        }
    }

    /// A node was deleted.
    pub(crate) fn node_deleted(&mut self, name: &str) {
        self.cache.remove_node(name);
    }

    /// After a relist: drops pods the list no longer has.
    pub(crate) fn pods_resynced(&mut self, seen: &std::collections::HashSet<String>) {
        for uid in self.cache.pod_uids() {
            if !seen.contains(&uid) && !self.cache.is_assumed(&uid) {
                self.pod_deleted(&uid);
            }
        }
    }

    /// After a relist: drops nodes the list no longer has.
    pub(crate) fn nodes_resynced(&mut self, seen: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self.cache.nodes.iter().map(|n| n.name.clone()).filter(|n| !seen.contains(n)).collect();
        for n in gone {
            self.node_deleted(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn only_pending_default_scheduler_pods_are_queued() {
        let mut s = State::new(1);
        s.pod_applied(pod(
            json!({"metadata": {"name": "a", "namespace": "d", "uid": "a"}, "spec": {"containers": []}}),
        ));
        s.pod_applied(pod(json!({"metadata": {"name": "b", "namespace": "d", "uid": "b"},
            "spec": {"schedulerName": "other", "containers": []}})));
        s.pod_applied(pod(
            json!({"metadata": {"name": "c", "namespace": "d", "uid": "c", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": []}}),
        ));
        assert!(s.queue.contains("a"));
        assert!(!s.queue.contains("b"));
        assert!(!s.queue.contains("c"));
        // Bound: leaves the queue, enters the cache (on a node not yet known).
        s.pod_applied(pod(json!({"metadata": {"name": "a", "namespace": "d", "uid": "a"}, "spec": {"nodeName": "n", "containers": []}})));
        assert!(!s.queue.contains("a"));
        assert_eq!(s.cache.pod_node("a"), Some("n"));
        s.pod_deleted("a");
        assert_eq!(s.cache.pod_node("a"), None);
    }
}
