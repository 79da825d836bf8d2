//! The scheduling queue, as upstream's: an active queue ordered by priority then creation time, a backoff
//! queue (1 s doubling per failed attempt up to 10 s), and the unschedulable pods, which go back when the
//! cluster changes in a way that may help them (or after 60 s at the latest).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::podinfo::PodInfo;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a pod may sit unschedulable before it is retried anyway.
pub(crate) const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(60);

/// A pod handed out for one scheduling attempt.
#[derive(Clone, Debug)]
pub(crate) struct Popped {
    pub(crate) info: Arc<PodInfo>,
    pub(crate) attempts: u32,
    /// The queue's move counter when the pod was handed out.
    pub(crate) cycle: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
    InFlight,
}

struct Entry {
    info: Arc<PodInfo>,
    attempts: u32,
    place: Place,
    /// Plugins that rejected the pod last time (which cluster events may help it).
    plugins: Vec<&'static str>,
}

struct HeapItem {
    priority: i32,
    created: Option<k8s_openapi::jiff::Timestamp>,
    seq: u64,
    uid: String,
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    /// Max-heap: higher priority first, then the older pod, then the one queued first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.created.cmp(&self.created))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// What changed in the cluster, for deciding which unschedulable pods to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClusterEvent {
    /// A node was added or a scheduling property of one changed; a pod was deleted; the periodic flush.
    Any,
    /// A pod was bound to a node: only helps pods rejected by affinity or spreading.
    AssignedPodAdded,
}

/// Pending pods this scheduler is responsible for.
#[derive(Default)]
pub(crate) struct SchedulingQueue {
    heap: BinaryHeap<HeapItem>,
    entries: HashMap<String, Entry>,
    seq: u64,
    /// Bumped whenever pods are moved back; a pod failing in a cycle that saw a move goes to backoff.
    moves: u64,
}

fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

impl SchedulingQueue {
    fn push_active(&mut self, uid: &str) {
        let Some(e) = self.entries.get_mut(uid) else { return };
        self.seq += 1;
        e.place = Place::Active(self.seq);
        self.heap.push(HeapItem {
            priority: e.info.priority,
            created: e.info.pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            seq: self.seq,
            uid: uid.to_owned(),
        });
    }

    /// Adds a new pending pod, or updates a known one (a changed spec retries an unschedulable pod).
    pub(crate) fn add_or_update(&mut self, info: Arc<PodInfo>) {
        let uid = info.uid.clone();
        match self.entries.get_mut(&uid) {
            None => {
                self.entries
                    .insert(uid.clone(), Entry { info, attempts: 0, place: Place::InFlight, plugins: Vec::new() });
                self.push_active(&uid);
            }
            Some(e) => {
                let changed = e.info.pod.spec != info.pod.spec
                    || e.info.pod.metadata.labels != info.pod.metadata.labels
                    || e.info.pod.metadata.annotations != info.pod.metadata.annotations;
                let priority_changed = e.info.priority != info.priority;
                e.info = info;
                match e.place {
                    Place::Unschedulable(_) if changed => {
                        let attempts = e.attempts;
                        self.requeue(&uid, attempts);
                    }
                    Place::Active(_) if priority_changed => self.push_active(&uid),
                    _ => {}
                }
            }
        }
    }

    fn requeue(&mut self, uid: &str, attempts: u32) {
        let Some(e) = self.entries.get_mut(uid) else { return };
        if attempts == 0 {
            self.push_active(uid);
        } else {
            e.place = Place::Backoff(Instant::now() + backoff(attempts));
        }
    }

    /// Forgets a pod (deleted, bound, or no longer ours).
    pub(crate) fn delete(&mut self, uid: &str) {
        self.entries.remove(uid);
    }

    /// Whether the queue knows the pod.
    pub(crate) fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// The next pod to schedule.
    pub(crate) fn pop(&mut self) -> Option<Popped> {
        while let Some(item) = self.heap.pop() {
            let Some(e) = self.entries.get_mut(&item.uid) else { continue };
            if e.place != Place::Active(item.seq) {
                continue;
            }
            e.place = Place::InFlight;
            e.attempts += 1;
            return Some(Popped { info: e.info.clone(), attempts: e.attempts, cycle: self.moves });
        }
        None
    }

    /// Whether a pod is waiting in the active queue.
    pub(crate) fn has_active(&self) -> bool {
        !self.heap.is_empty()
    }

    /// The pod was found unschedulable by `plugins`.
    pub(crate) fn unschedulable(&mut self, uid: &str, cycle: u64, plugins: Vec<&'static str>) {
        let moved_since = self.moves > cycle;
        let Some(e) = self.entries.get_mut(uid) else { return };
        if e.place != Place::InFlight {
            return;
        }
        e.plugins = plugins;
        let attempts = e.attempts;
        if moved_since {
            e.place = Place::Backoff(Instant::now() + backoff(attempts));
        } else {
            e.place = Place::Unschedulable(Instant::now());
        }
    }

    /// The attempt failed for another reason (the bind or an API error): retry after backoff.
    pub(crate) fn error(&mut self, uid: &str) {
        let Some(e) = self.entries.get_mut(uid) else { return };
        e.place = Place::Backoff(Instant::now() + backoff(e.attempts));
    }

    /// Moves unschedulable pods that `event` may help to the backoff or active queue.
    pub(crate) fn move_all(&mut self, event: ClusterEvent) {
        self.moves += 1;
        let helped: Vec<(String, u32)> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable(_)))
            .filter(|(_, e)| {
                event == ClusterEvent::Any
                    || e.plugins.iter().any(|p| *p == "InterPodAffinity" || *p == "PodTopologySpread")
            })
            .map(|(uid, e)| (uid.clone(), e.attempts))
            .collect();
        for (uid, attempts) in helped {
            self.requeue(&uid, attempts);
        }
    }

    /// Moves pods whose backoff ended to the active queue, and retries pods unschedulable for too long.
    /// Returns when the next backoff ends.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<Instant> {
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for (uid, e) in &self.entries {
            match e.place {
                Place::Backoff(until) if until <= now => ready.push(uid.clone()),
                Place::Backoff(until) => next = Some(next.map_or(until, |n| n.min(until))),
                Place::Unschedulable(since) if now.duration_since(since) >= MAX_UNSCHEDULABLE => {
                    ready.push(uid.clone())
                }
                _ => {}
            }
        }
        for uid in ready {
            self.push_active(&uid);
        }
        next
    }

    /// Counts by state (active, backoff, unschedulable, in flight).
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for e in self.entries.values() {
            match e.place {
                Place::Active(_) => c.0 += 1,
                Place::Backoff(_) => c.1 += 1,
                Place::Unschedulable(_) => c.2 += 1,
                Place::InFlight => c.3 += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    fn p(name: &str, priority: i32, created: &str) -> Arc<PodInfo> {
        pod(json!({"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"priority": priority, "containers": [{"name": "c"}]}}))
    }

    #[test]
    fn pops_by_priority_then_age() {
        let mut q = SchedulingQueue::default();
        q.add_or_update(p("young", 0, "2024-01-01T00:00:02Z"));
        q.add_or_update(p("old", 0, "2024-01-01T00:00:01Z"));
        q.add_or_update(p("vip", 10, "2024-01-01T00:00:03Z"));
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).map(|p| p.info.name.clone()).collect();
        assert_eq!(order, vec!["vip", "old", "young"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_event_then_back_off() {
        let mut q = SchedulingQueue::default();
        q.add_or_update(p("a", 0, "2024-01-01T00:00:00Z"));
        let popped = q.pop().unwrap();
        q.unschedulable(&popped.info.uid, popped.cycle, vec!["NodeResourcesFit"]);
        assert_eq!(q.counts(), (0, 0, 1, 0));
        q.move_all(ClusterEvent::AssignedPodAdded);
        assert_eq!(q.counts(), (0, 0, 1, 0), "a bound pod does not help a resource failure");
        q.move_all(ClusterEvent::Any);
        assert_eq!(q.counts(), (0, 1, 0, 0));
        assert!(q.pop().is_none());
        q.flush(Instant::now() + Duration::from_secs(2));
        assert_eq!(q.pop().unwrap().attempts, 2);
    }

    #[test]
    fn a_move_during_the_attempt_sends_the_pod_to_backoff() {
        let mut q = SchedulingQueue::default();
        q.add_or_update(p("a", 0, "2024-01-01T00:00:00Z"));
        let popped = q.pop().unwrap();
        q.move_all(ClusterEvent::Any);
        q.unschedulable(&popped.info.uid, popped.cycle, vec![]);
        assert_eq!(q.counts(), (0, 1, 0, 0));
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(5), Duration::from_secs(10));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }
}
