//! Guarding against the thundering herd, as upstream: nodes are grouped by zone, each zone's NoExecute
//! tainting goes through a rate-limited queue (`--node-eviction-rate` 0.1/s, burst 1), a zone mostly
//! unhealthy slows to `--secondary-node-eviction-rate` (0.01/s) if it is large (> 50 nodes) or stops, and
//! when every zone is fully disrupted (no Ready node anywhere: most likely the control plane lost the
//! network, not the nodes) tainting stops and the NoExecute taints are lifted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;

/// Nodes with this label are left out of the zone accounting.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// The zone key of a node (upstream's `GetZoneKey`: region and zone, GA labels first).
pub(crate) fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| labels.and_then(|l| l.get(a).or_else(|| l.get(b))).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() { String::new() } else { format!("{region}:\x00:{zone}") }
}

/// Whether the node is left out of disruption checks.
pub(crate) fn excluded(node: &Node) -> bool {
    node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION))
}

/// A zone's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZoneState {
    /// Just seen.
    Initial,
    /// Mostly healthy.
    Normal,
    /// More than two nodes and at least 55% of them not Ready.
    PartialDisruption,
    /// No Ready node.
    FullDisruption,
}

/// The eviction rates (upstream's flags and defaults).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rates {
    /// `--node-eviction-rate`.
    pub(crate) normal: f64,
    /// `--secondary-node-eviction-rate`.
    pub(crate) secondary: f64,
    /// `--large-cluster-size-threshold`.
    pub(crate) large_cluster: usize,
    /// `--unhealthy-zone-threshold`.
    pub(crate) unhealthy_zone: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates { normal: 0.1, secondary: 0.01, large_cluster: 50, unhealthy_zone: 0.55 }
    }
}

impl Rates {
    /// The state of a zone whose nodes' Ready statuses are `ready` (`None`: no Ready condition yet).
    pub(crate) fn zone_state(&self, ready: &[Option<String>]) -> ZoneState {
        let ok = ready.iter().filter(|r| r.as_deref() == Some("True")).count();
        let bad = ready.len() - ok;
        if ok == 0 && bad > 0 {
            ZoneState::FullDisruption
        } else if bad > 2 && bad as f64 / ready.len() as f64 >= self.unhealthy_zone {
            ZoneState::PartialDisruption
        } else {
            ZoneState::Normal
        }
    }

    /// The tainting rate for a zone of `size` nodes in `state`.
    pub(crate) fn qps(&self, state: ZoneState, size: usize) -> f64 {
        match state {
            ZoneState::PartialDisruption if size > self.large_cluster => self.secondary,
            ZoneState::PartialDisruption => 0.0,
            _ => self.normal,
        }
    }
}

/// What the controller must do after a pass's zone accounting.
#[derive(Debug, PartialEq)]
pub(crate) enum Disruption {
    /// Nothing changed.
    Steady,
    /// Every zone just became fully disrupted: stop tainting, lift the NoExecute taints of all nodes.
    Enter,
    /// Some node is Ready again after a full disruption: give every node a fresh grace period and set these rates.
    Exit(Vec<(String, f64)>),
    /// These zones changed state: set their rates.
    Rates(Vec<(String, f64)>),
}

/// The zone states across passes.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    states: HashMap<String, ZoneState>,
}

impl Zones {
    /// Upstream's `handleDisruption` over this pass's Ready statuses per zone.
    pub(crate) fn update(&mut self, rates: &Rates, per_zone: &HashMap<String, Vec<Option<String>>>) -> Disruption {
        let new: HashMap<&String, ZoneState> = per_zone.iter().map(|(z, r)| (z, rates.zone_state(r))).collect();
        let all_are = new.values().all(|s| *s == ZoneState::FullDisruption);
        for z in per_zone.keys() {
            self.states.entry(z.clone()).or_insert(ZoneState::Initial);
        }
        self.states.retain(|z, _| per_zone.contains_key(z));
        let all_were = self.states.values().all(|s| *s == ZoneState::FullDisruption);
        if all_are && all_were {
            return Disruption::Steady;
        }
        if all_are {
            for s in self.states.values_mut() {
                *s = ZoneState::FullDisruption;
            }
            return Disruption::Enter;
        }
        let mut changed = Vec::new();
        for (z, state) in self.states.iter_mut() {
            let n = new.get(z).copied().unwrap_or(ZoneState::Normal);
            if all_were || *state != n {
                *state = n;
                changed.push((z.clone(), rates.qps(n, per_zone.get(z).map_or(0, Vec::len))));
            }
        }
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        if all_were {
            Disruption::Exit(changed)
        } else if changed.is_empty() {
            Disruption::Steady
        } else {
            Disruption::Rates(changed)
        }
    }
}

/// A token bucket with a burst of one (upstream's eviction limiter); a rate of 0 never lets anything through.
#[derive(Debug)]
struct Bucket {
    qps: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(qps: f64, now: Instant) -> Bucket {
        Bucket { qps, tokens: 1.0, at: now }
    }

    fn try_accept(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        self.tokens = (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.qps).min(1.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One zone's rate-limited queue of nodes to taint NoExecute (upstream's `RateLimitedTimedQueue` over a
/// `UniqueQueue`: a node stays a member after it was handed out, so it is not queued again until removed).
#[derive(Debug)]
pub(crate) struct TaintQueue {
    queue: VecDeque<String>,
    members: HashSet<String>,
    bucket: Bucket,
}

impl TaintQueue {
    /// A queue letting `qps` nodes a second through.
    pub(crate) fn new(qps: f64, now: Instant) -> TaintQueue {
        TaintQueue { queue: VecDeque::new(), members: HashSet::new(), bucket: Bucket::new(qps, now) }
    }

    /// A new rate (upstream's `SwapLimiter`: a fresh bucket).
    pub(crate) fn set_qps(&mut self, qps: f64, now: Instant) {
        if (self.bucket.qps - qps).abs() > f64::EPSILON {
            self.bucket = Bucket::new(qps, now);
        }
    }

    /// Queues `name` unless it is a member already; says whether it was queued.
    pub(crate) fn add(&mut self, name: &str) -> bool {
        if !self.members.insert(name.to_owned()) {
            return false;
        }
        self.queue.push_back(name.to_owned());
        true
    }

    /// Forgets `name`; says whether it was a member.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.queue.retain(|n| n != name);
        self.members.remove(name)
    }

    /// The next node, if the rate allows one now.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<String> {
        if self.queue.is_empty() || !self.bucket.try_accept(now) {
            return None;
        }
        self.queue.pop_front()
    }

    /// Puts a node whose tainting failed back at the end.
    pub(crate) fn retry(&mut self, name: String) {
        if self.members.contains(&name) && !self.queue.contains(&name) {
            self.queue.push_back(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn zone(statuses: &[&str]) -> Vec<Option<String>> {
        statuses.iter().map(|s| if s.is_empty() { None } else { Some((*s).to_owned()) }).collect()
    }

    #[test]
    fn zone_states_follow_upstream_thresholds() {
        let r = Rates::default();
        assert_eq!(r.zone_state(&zone(&["Unknown", ""])), ZoneState::FullDisruption);
        assert_eq!(r.zone_state(&zone(&["True", "Unknown", "False"])), ZoneState::Normal);
        assert_eq!(r.zone_state(&zone(&["True", "Unknown", "False", "Unknown"])), ZoneState::PartialDisruption);
        assert_eq!(r.qps(ZoneState::PartialDisruption, 10), 0.0);
        assert_eq!(r.qps(ZoneState::PartialDisruption, 51), 0.01);
        assert_eq!(r.qps(ZoneState::Normal, 3), 0.1);
    }

    #[test]
    fn all_zones_down_stops_tainting_until_a_node_is_ready_again() {
        let r = Rates::default();
        let mut z = Zones::default();
        let pass = |v: &[(&str, &[&str])]| -> HashMap<String, Vec<Option<String>>> {
            v.iter().map(|(k, s)| ((*k).to_owned(), zone(s))).collect()
        };
        assert_eq!(z.update(&r, &pass(&[("a", &["True", "True"])])), Disruption::Rates(vec![("a".into(), 0.1)]));
        assert_eq!(z.update(&r, &pass(&[("a", &["True", "Unknown"])])), Disruption::Steady);
        assert_eq!(z.update(&r, &pass(&[("a", &["Unknown", "Unknown"]), ("b", &["False"])])), Disruption::Enter);
        assert_eq!(z.update(&r, &pass(&[("a", &["Unknown", "Unknown"]), ("b", &["False"])])), Disruption::Steady);
        assert_eq!(
            z.update(&r, &pass(&[("a", &["True", "Unknown"]), ("b", &["False"])])),
            Disruption::Exit(vec![("a".into(), 0.1), ("b".into(), 0.1)])
        );
        // One zone fully down while another is fine: nothing to change (that zone keeps the normal rate).
        assert_eq!(z.update(&r, &pass(&[("a", &["True", "True"]), ("b", &["False"])])), Disruption::Steady);
        let partial = pass(&[("a", &["True", "Unknown", "Unknown", "Unknown"]), ("b", &["False"])]);
        assert_eq!(z.update(&r, &partial), Disruption::Rates(vec![("a".into(), 0.0)]));
    }

    #[test]
    fn the_taint_queue_is_rate_limited_and_unique() {
        let t0 = Instant::now();
        let mut q = TaintQueue::new(0.1, t0);
        assert!(q.add("a"));
        assert!(q.add("b"));
        assert!(!q.add("a"));
        assert_eq!(q.pop(t0).as_deref(), Some("a"));
        assert_eq!(q.pop(t0 + Duration::from_secs(5)), None, "burst of one, then 0.1/s");
        assert_eq!(q.pop(t0 + Duration::from_secs(10)).as_deref(), Some("b"));
        assert!(!q.add("a"), "handed out but still a member");
        assert!(q.remove("a"));
        assert!(q.add("a"));
        q.set_qps(0.0, t0);
        assert_eq!(q.pop(t0 + Duration::from_secs(100)), None);
    }

    #[test]
    fn zone_keys_use_region_and_zone_labels() {
        let mut n = Node::default();
        assert_eq!(zone_key(&n), "");
        n.metadata.labels = Some([("topology.kubernetes.io/zone".to_owned(), "z1".to_owned())].into());
        assert_eq!(zone_key(&n), ":\x00:z1");
        assert!(!excluded(&n));
    }
}
