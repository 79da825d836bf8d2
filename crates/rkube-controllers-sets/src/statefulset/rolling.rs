//! The rolling-update step of a StatefulSet pass (upstream's tail of `updateStatefulSet` and
//! `updateStatefulSetAfterInvariantEstablished`): from the highest ordinal down to the partition, delete
//! pods not at the update revision, one at a time waiting for each replacement to be available, or with
//! `maxUnavailable` set as many as keep the unavailable pods within it.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::ordinals::pod_revision;
use super::plan::{Action, Plan};
use super::status::{is_terminating, is_unavailable};
use crate::intstr::scaled;

/// `maxUnavailable` against the replica count, rounded down but at least 1 (upstream's
/// `getStatefulSetMaxUnavailable`); `None` when not set.
pub(crate) fn max_unavailable(set: &StatefulSet) -> Option<i32> {
    let ru = set.spec.as_ref()?.update_strategy.as_ref()?.rolling_update.as_ref()?;
    let v = ru.max_unavailable.as_ref()?;
    Some(scaled(v, super::ordinals::replicas(set), false).unwrap_or(1).max(1))
}

/// The first index the update may replace (`partition`, 0 by default).
fn partition(set: &StatefulSet) -> usize {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition);
    usize::try_from(p.unwrap_or(0)).unwrap_or(0)
}

/// Adds the rolling update's deletions to `out` (and counts them off `currentReplicas`).
pub(crate) fn plan(set: &StatefulSet, replicas: &[Pod], update: &str, now: Timestamp, out: &mut Plan) {
    let min_ready = set.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let first = partition(set);
    let take = |p: &Pod, out: &mut Plan| {
        out.actions.push(Action::Delete(p.clone()));
        out.status.current_replicas = Some(out.status.current_replicas.unwrap_or(0) - 1);
    };
    match max_unavailable(set) {
        None => {
            for target in (first..replicas.len()).rev() {
                let p = &replicas[target];
                if pod_revision(p) != update && !is_terminating(p) {
                    take(p, out);
                    return;
                }
                if is_unavailable(p, min_ready, now) {
                    return;
                }
            }
        }
        Some(max) => {
            let unavailable = replicas.iter().filter(|p| is_unavailable(p, min_ready, now)).count();
            let max = usize::try_from(max).unwrap_or(1);
            if unavailable > max {
                return;
            }
            let mut budget = max - unavailable;
            for target in (first..replicas.len()).rev() {
                if budget == 0 {
                    break;
                }
                let p = &replicas[target];
                if pod_revision(p) != update && !is_terminating(p) {
                    take(p, out);
                    budget -= 1;
                }
            }
        }
    }
}
