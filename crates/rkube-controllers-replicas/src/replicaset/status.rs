//! The status a replica controller reports (upstream's `calculateStatus`): counts over its active pods,
//! the `ReplicaFailure` condition while creating or deleting pods fails, and when to look again for pods
//! that are ready but not yet available for `minReadySeconds`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::kind::{Condition, ReplicaStatus};
use rkube_client::pods::{is_available, is_ready, ready_since};

/// The condition type written when pods cannot be created or deleted.
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Inputs of the status computation for one owner.
pub(crate) struct Observed<'a> {
    /// The status as stored.
    pub(crate) current: ReplicaStatus,
    /// `metadata.generation`.
    pub(crate) generation: i64,
    /// `spec.replicas`.
    pub(crate) desired: i32,
    /// `spec.minReadySeconds`.
    pub(crate) min_ready_seconds: i32,
    /// The template's labels.
    pub(crate) template_labels: &'a BTreeMap<String, String>,
    /// The owner's active pods.
    pub(crate) pods: &'a [Arc<Pod>],
    /// Why creating or deleting pods failed in this sync, if it did.
    pub(crate) manage_error: Option<&'a str>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The new status.
pub(crate) fn calculate(o: &Observed<'_>, now: Timestamp) -> ReplicaStatus {
    let labeled = o.pods.iter().filter(|p| {
        let labels = p.metadata.labels.as_ref();
        o.template_labels.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    });
    let mut status = ReplicaStatus {
        replicas: count(o.pods.len()),
        fully_labeled: count(labeled.count()),
        ready: count(o.pods.iter().filter(|p| is_ready(p)).count()),
        available: count(o.pods.iter().filter(|p| is_available(p, o.min_ready_seconds, now)).count()),
        observed_generation: o.generation,
        conditions: o.current.conditions.clone(),
    };
    let failing = status.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match o.manage_error {
        Some(message) if !failing => {
            let reason = if count(o.pods.len()) < o.desired { "FailedCreate" } else { "FailedDelete" };
            status.conditions.push(Condition {
                type_: REPLICA_FAILURE.to_owned(),
                status: "True".to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
                last_transition_time: Some(Time(now)),
            });
        }
        None if failing => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    status
}

/// How long until the next of `pods` that is ready but not yet available becomes available.
pub(crate) fn next_available_in(pods: &[Arc<Pod>], min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    pods.iter()
        .filter(|p| !is_available(p, min_ready_seconds, now))
        .filter_map(|p| ready_since(p))
        .map(|since| {
            let left = since.as_second() + i64::from(min_ready_seconds) - now.as_second();
            // A little past the second boundary, so the pod is available when we look.
            Duration::from_secs(u64::try_from(left.max(0)).unwrap_or(0)) + Duration::from_millis(100)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(labels: &[(&str, &str)], ready_at: Option<i64>) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        p.status = Some(PodStatus {
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(t))),
                    ..PodCondition::default()
                }]
            }),
            ..PodStatus::default()
        });
        Arc::new(p)
    }

    #[test]
    fn counts_and_failure_condition() {
        let labels: BTreeMap<String, String> =
            [("app".to_owned(), "web".to_owned()), ("v".to_owned(), "1".to_owned())].into();
        let pods =
            vec![pod(&[("app", "web"), ("v", "1")], Some(100)), pod(&[("app", "web")], Some(108)), pod(&[], None)];
        let mut o = Observed {
            current: ReplicaStatus::default(),
            generation: 3,
            desired: 5,
            min_ready_seconds: 10,
            template_labels: &labels,
            pods: &pods,
            manage_error: Some("pods \"x\" is forbidden: exceeded quota"),
        };
        let s = calculate(&o, ts(112));
        assert_eq!((s.replicas, s.fully_labeled, s.ready, s.available, s.observed_generation), (3, 1, 2, 1, 3));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].reason.as_deref(), Some("FailedCreate"));
        assert_eq!(next_available_in(&pods, 10, ts(112)), Some(Duration::from_millis(6100)));
        o.current = s.clone();
        o.manage_error = Some("another message");
        assert_eq!(calculate(&o, ts(113)).conditions, s.conditions, "an existing failure is kept as it is");
        o.manage_error = None;
        assert!(calculate(&o, ts(113)).conditions.is_empty());
        assert_eq!(next_available_in(&pods, 0, ts(112)), None);
    }
}
