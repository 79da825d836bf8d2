//! Node health as upstream's `tryUpdateNodeHealth` judges it: when a node was last heard from is the time
//! on *our* clock at which we last saw its Ready heartbeat or its Lease `renewTime` change, never a
//! comparison of its timestamps with our clock. A node silent for longer than its grace period gets its
//! conditions set to `Unknown`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

/// The conditions the controller turns `Unknown` (NetworkUnavailable is left alone, as upstream does:
/// it is owned by the network provider, not the kubelet).
const MARKED_UNKNOWN: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers about one node between passes.
#[derive(Clone, Debug)]
pub(crate) struct Health {
    /// When we last heard from the node (local clock).
    pub(crate) probe: Instant,
    /// When we last saw its Ready condition change (local clock).
    pub(crate) ready_transition: Instant,
    /// The Ready condition as last seen; only its own timestamps are compared with each other.
    pub(crate) ready: Option<NodeCondition>,
    /// The Lease `renewTime` last seen.
    pub(crate) lease_renew: Option<MicroTime>,
}

impl Health {
    fn fresh(ready: Option<&NodeCondition>, now: Instant) -> Health {
        Health { probe: now, ready_transition: now, ready: ready.cloned(), lease_renew: None }
    }
}

/// The node's condition of type `kind`.
pub(crate) fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind)
}

/// Folds what the node shows now into what we remembered. A node seen for the first time (a new
/// controller, a new leader) starts with a full grace period from `now`.
pub(crate) fn observe(
    prev: Option<Health>,
    ready: Option<&NodeCondition>,
    lease_renew: Option<&MicroTime>,
    now: Instant,
) -> Health {
    let mut h = match prev {
        None => Health::fresh(ready, now),
        Some(p) => match (&p.ready, ready) {
            (None, None) => p,
            // Ready appeared (or vanished) since we last looked: start counting again.
            (None, Some(_)) | (Some(_), None) => Health::fresh(ready, now),
            (Some(saved), Some(cur)) if saved.last_heartbeat_time != cur.last_heartbeat_time => {
                let ready_transition =
                    if saved.last_transition_time != cur.last_transition_time { now } else { p.ready_transition };
                Health { probe: now, ready_transition, ready: Some(cur.clone()), lease_renew: p.lease_renew }
            }
            (Some(_), Some(_)) => p,
        },
    };
    if let Some(renew) = lease_renew
        && h.lease_renew.as_ref() != Some(renew)
    {
        h.lease_renew = Some(renew.clone());
        h.probe = now;
    }
    h
}

/// Whether the node has been silent for longer than `grace` at `now`.
pub(crate) fn is_stale(h: &Health, now: Instant, grace: Duration) -> bool {
    now.saturating_duration_since(h.probe) > grace
}

/// The node's conditions with Ready, MemoryPressure, DiskPressure and PIDPressure set `Unknown`
/// (upstream's reasons and messages); conditions already `Unknown` are kept as they are.
pub(crate) fn mark_unknown(node: &Node, now: &Time) -> Vec<NodeCondition> {
    let mut conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    for kind in MARKED_UNKNOWN {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            None => conditions.push(NodeCondition {
                type_: kind.to_owned(),
                status: "Unknown".to_owned(),
                reason: Some("NodeStatusNeverUpdated".to_owned()),
                message: Some("Kubelet never posted node status.".to_owned()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(now.clone()),
            }),
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".to_owned();
                c.reason = Some("NodeStatusUnknown".to_owned());
                c.message = Some("Kubelet stopped posting node status.".to_owned());
                c.last_transition_time = Some(now.clone());
            }
            Some(_) => {}
        }
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeStatus;
    use k8s_openapi::jiff::Timestamp;

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn ready(status: &str, heartbeat: i64, transition: i64) -> NodeCondition {
        NodeCondition {
            type_: "Ready".into(),
            status: status.into(),
            last_heartbeat_time: Some(at(heartbeat)),
            last_transition_time: Some(at(transition)),
            ..NodeCondition::default()
        }
    }

    const GRACE: Duration = Duration::from_secs(40);

    #[test]
    fn a_node_first_seen_gets_a_full_grace_period_whatever_its_timestamps() {
        let t0 = Instant::now();
        // Heartbeat from long ago on the node's clock: irrelevant, we have only just seen it.
        let h = observe(None, Some(&ready("True", 1, 1)), None, t0);
        assert!(!is_stale(&h, t0 + Duration::from_secs(39), GRACE));
        assert!(is_stale(&h, t0 + Duration::from_secs(41), GRACE));
    }

    #[test]
    fn a_changed_heartbeat_or_lease_renewal_counts_as_heard_from() {
        let t0 = Instant::now();
        let h = observe(None, Some(&ready("True", 100, 1)), None, t0);
        // Same heartbeat later: nothing heard.
        let h = observe(Some(h), Some(&ready("True", 100, 1)), None, t0 + Duration::from_secs(30));
        assert_eq!(h.probe, t0);
        // New heartbeat (even one "older" by the node's clock): heard from now.
        let t1 = t0 + Duration::from_secs(35);
        let h = observe(Some(h), Some(&ready("True", 50, 1)), None, t1);
        assert_eq!(h.probe, t1);
        assert_eq!(h.ready_transition, t0, "the transition time did not change");
        // A lease renewal alone also counts; the same renewTime again does not.
        let renew = MicroTime(Timestamp::from_second(500).unwrap());
        let t2 = t1 + Duration::from_secs(30);
        let h = observe(Some(h), Some(&ready("True", 50, 1)), Some(&renew), t2);
        assert_eq!(h.probe, t2);
        let h = observe(Some(h), Some(&ready("True", 50, 1)), Some(&renew), t2 + Duration::from_secs(45));
        assert_eq!(h.probe, t2);
        assert!(is_stale(&h, t2 + Duration::from_secs(45), GRACE));
        // A Ready transition moves both.
        let t3 = t2 + Duration::from_secs(50);
        let h = observe(Some(h), Some(&ready("False", 60, 60)), Some(&renew), t3);
        assert_eq!((h.probe, h.ready_transition), (t3, t3));
    }

    #[test]
    fn stale_nodes_get_unknown_conditions_with_upstream_wording() {
        let node = Node {
            status: Some(NodeStatus {
                conditions: Some(vec![
                    ready("True", 10, 5),
                    NodeCondition { type_: "MemoryPressure".into(), status: "False".into(), ..Default::default() },
                    NodeCondition { type_: "NetworkUnavailable".into(), status: "False".into(), ..Default::default() },
                ]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        let conds = mark_unknown(&node, &at(1000));
        let r = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(r.status, "Unknown");
        assert_eq!(r.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(r.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(r.last_transition_time, Some(at(1000)));
        assert_eq!(r.last_heartbeat_time, Some(at(10)), "the heartbeat is the kubelet's, kept");
        let disk = conds.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(disk.message.as_deref(), Some("Kubelet never posted node status."));
        let net = conds.iter().find(|c| c.type_ == "NetworkUnavailable").unwrap();
        assert_eq!(net.status, "False", "NetworkUnavailable is not the kubelet's to report");
        // Already Unknown: unchanged (no new transition time).
        let mut again = node.clone();
        again.status.as_mut().unwrap().conditions = Some(conds.clone());
        assert_eq!(mark_unknown(&again, &at(2000)), conds);
    }
}
