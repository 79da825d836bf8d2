//! A StatefulSet's status as upstream computes it (`computeReplicaStatus`, `completeRollingUpdate`,
//! `inconsistentStatus`): counts over the pods with ordinals, revisions, and whether anything changed.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::ordinals::pod_revision;
use rkube_client::pods;

/// Created: the API server gave it a phase.
pub(crate) fn is_created(p: &Pod) -> bool {
    !pods::phase(p).is_empty()
}

/// Running with its Ready condition true.
pub(crate) fn is_running_and_ready(p: &Pod) -> bool {
    pods::phase(p) == "Running" && pods::is_ready(p)
}

/// Ready for `min_ready` seconds.
pub(crate) fn is_available(p: &Pod, min_ready: i32, now: Timestamp) -> bool {
    pods::is_available(p, min_ready, now)
}

/// Being deleted.
pub(crate) fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Not available, or being deleted.
pub(crate) fn is_unavailable(p: &Pod, min_ready: i32, now: Timestamp) -> bool {
    !is_available(p, min_ready, now) || is_terminating(p)
}

/// Counts replicas, ready, available, current and updated pods into `status`.
pub(crate) fn count<'a>(
    status: &mut StatefulSetStatus,
    pods: impl Iterator<Item = &'a Pod>,
    min_ready: i32,
    now: Timestamp,
) {
    let current = status.current_revision.clone().unwrap_or_default();
    let update = status.update_revision.clone().unwrap_or_default();
    let (mut replicas, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
    for p in pods {
        if is_created(p) {
            replicas += 1;
        }
        if is_running_and_ready(p) {
            ready += 1;
            available += i32::from(is_available(p, min_ready, now));
        }
        if is_created(p) && !is_terminating(p) {
            cur += i32::from(pod_revision(p) == current);
            upd += i32::from(pod_revision(p) == update);
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(cur);
    status.updated_replicas = Some(upd);
}

/// A rolling update whose every replica runs the update revision and is ready becomes the current one.
pub(crate) fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let rolling = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let want = super::ordinals::replicas(set);
    if rolling
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// Whether `status` differs from the set's in what upstream compares.
pub(crate) fn differs(set: &StatefulSet, status: &StatefulSetStatus) -> bool {
    let cur = set.status.clone().unwrap_or_default();
    let z = |v: Option<i32>| v.unwrap_or(0);
    status.observed_generation.unwrap_or(0) > cur.observed_generation.unwrap_or(0)
        || status.replicas != cur.replicas
        || z(status.current_replicas) != z(cur.current_replicas)
        || z(status.ready_replicas) != z(cur.ready_replicas)
        || z(status.updated_replicas) != z(cur.updated_replicas)
        || status.current_revision != cur.current_revision
        || z(status.available_replicas) != z(cur.available_replicas)
        || status.update_revision != cur.update_revision
        || z(status.collision_count) != z(cur.collision_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;

    #[test]
    fn a_finished_rolling_update_becomes_current() {
        let set = StatefulSet {
            spec: Some(StatefulSetSpec { replicas: Some(2), ..Default::default() }),
            status: Some(StatefulSetStatus { replicas: 2, ..Default::default() }),
            ..Default::default()
        };
        let mut st = StatefulSetStatus {
            replicas: 2,
            ready_replicas: Some(2),
            updated_replicas: Some(2),
            current_replicas: Some(0),
            current_revision: Some("web-a".into()),
            update_revision: Some("web-b".into()),
            ..Default::default()
        };
        complete_rolling_update(&set, &mut st);
        assert_eq!((st.current_revision.as_deref(), st.current_replicas), (Some("web-b"), Some(2)));
        assert!(differs(&set, &st));
        let same = StatefulSet { status: Some(st.clone()), ..set.clone() };
        assert!(!differs(&same, &st));
        let mut partial = StatefulSetStatus { updated_replicas: Some(1), ..st.clone() };
        partial.current_revision = Some("web-a".into());
        complete_rolling_update(&set, &mut partial);
        assert_eq!(partial.current_revision.as_deref(), Some("web-a"));
    }
}
