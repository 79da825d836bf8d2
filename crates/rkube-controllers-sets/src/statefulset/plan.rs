//! One pass of upstream's `updateStatefulSet` as a pure plan: replicas are created (in order, each waiting
//! for its predecessors to be Running and Ready, unless podManagementPolicy is Parallel), failed ones
//! replaced, identities repaired; pods beyond the replica count are deleted from the highest ordinal down;
//! then the rolling update (`rolling.rs`) replaces old-revision pods. The result is the list of writes and
//! the status to record.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::ordinals::{self, identity_matches, ordinal, storage_matches};
use super::pvc;
use super::status::{count, is_available, is_created, is_running_and_ready, is_terminating, is_unavailable};
use rkube_client::pods;

/// One write the plan asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Create the pod's claims, then the pod.
    Create(Pod),
    /// Create whatever claims of a pending pod are missing.
    CreateMissingClaims(Pod),
    /// Repair the pod's identity labels, storage or claim owners.
    Update(Pod),
    /// Set the owners of a condemned pod's claims as the retention policy says.
    FixClaims(Pod),
    /// Delete the pod.
    Delete(Pod),
}

/// What one pass does and the status it records.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Writes, in order; execution stops at the first failure.
    pub(crate) actions: Vec<Action>,
    /// The status after the pass.
    pub(crate) status: StatefulSetStatus,
}

/// The set at its current and update revisions (the template each revision holds).
pub(crate) struct Revisions<'a> {
    /// The set with the current revision's template.
    pub(crate) current_set: &'a StatefulSet,
    /// The set with the update revision's template.
    pub(crate) update_set: &'a StatefulSet,
    /// The current revision's name.
    pub(crate) current: &'a str,
    /// The update revision's name.
    pub(crate) update: &'a str,
    /// The collision count the update revision was named with.
    pub(crate) collision_count: i32,
}

/// The pod a new replica at `ordinal` gets: pods below the partition (or, without a rolling-update
/// config, below the current replica count) stay at the current revision (upstream's
/// `newVersionedStatefulSetPod`, operator precedence included).
pub(crate) fn new_versioned_pod(revs: &Revisions<'_>, ord: i32) -> Pod {
    let cur = revs.current_set;
    let strategy = cur.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let rolling_type = strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let start = ordinals::start(cur);
    let current_replicas = cur.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0);
    let at_current = (rolling_type && ru.is_none() && ord < start + current_replicas)
        || ru.is_some_and(|r| ord < start + r.partition.unwrap_or(0));
    let (set, rev) = if at_current { (revs.current_set, revs.current) } else { (revs.update_set, revs.update) };
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    ordinals::new_pod(revs.update_set, &template, ord, rev)
}

/// Whether every existing claim of `pod` is owned as the policy wants.
fn claims_match(set: &StatefulSet, pod: &Pod, claim: &impl Fn(&str) -> Option<PersistentVolumeClaim>) -> bool {
    pvc::claims_for(set, pod)
        .iter()
        .all(|c| claim(&c.name_any()).is_none_or(|live| pvc::owners_up_to_date(&live, set, pod)))
}

/// Plans one pass. `claim` looks a PersistentVolumeClaim of the set's namespace up by name.
pub(crate) fn plan(
    set: &StatefulSet,
    revs: &Revisions<'_>,
    pods: &[Pod],
    claim: impl Fn(&str) -> Option<PersistentVolumeClaim>,
    now: Timestamp,
) -> Plan {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(revs.current.to_owned()),
        update_revision: Some(revs.update.to_owned()),
        collision_count: Some(revs.collision_count),
        ..StatefulSetStatus::default()
    };
    let start = ordinals::start(set);
    let n = usize::try_from(ordinals::replicas(set)).unwrap_or(0);
    let mut slots: Vec<Option<Pod>> = vec![None; n];
    let mut condemned: Vec<Pod> = Vec::new();
    for p in pods {
        let o = ordinal(p);
        if ordinals::in_range(set, p) {
            if let Some(slot) = usize::try_from(o - start).ok().and_then(|i| slots.get_mut(i)) {
                *slot = Some(p.clone());
            }
        } else if o >= 0 {
            condemned.push(p.clone());
        }
    }
    let replicas: Vec<Pod> = slots
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.unwrap_or_else(|| new_versioned_pod(revs, start + i32::try_from(i).unwrap_or(0))))
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    let first_unavailable =
        replicas.iter().chain(condemned.iter().rev()).find(|p| is_unavailable(p, min_ready, now)).map(|p| p.name_any());
    count(&mut status, replicas.iter().chain(condemned.iter()), min_ready, now);
    let mut out = Plan { actions: Vec::new(), status };
    if set.metadata.deletion_timestamp.is_some() {
        return out;
    }
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let update_set = revs.update_set;
    for p in &replicas {
        if matches!(pods::phase(p), "Failed" | "Succeeded") {
            if !is_terminating(p) {
                out.actions.push(Action::Delete(p.clone()));
            }
            if monotonic {
                return out;
            }
            continue;
        }
        if !is_created(p) {
            let stale = !pvc::retains_on_scale(set)
                && pvc::claims_for(set, p)
                    .iter()
                    .any(|c| claim(&c.name_any()).is_some_and(|live| pvc::stale_for_pod(&live, p)));
            if !stale {
                out.actions.push(Action::Create(p.clone()));
            }
            if monotonic {
                return out;
            }
            continue;
        }
        if pods::phase(p) == "Pending" {
            out.actions.push(Action::CreateMissingClaims(p.clone()));
        }
        if monotonic && (is_terminating(p) || !is_running_and_ready(p) || !is_available(p, min_ready, now)) {
            return out;
        }
        if !(identity_matches(set, p) && storage_matches(set, p) && claims_match(update_set, p, &claim)) {
            out.actions.push(Action::Update(p.clone()));
        }
    }
    for p in &condemned {
        if !claims_match(update_set, p, &claim) {
            out.actions.push(Action::FixClaims(p.clone()));
        }
    }
    for p in &condemned {
        if is_terminating(p) {
            if monotonic {
                return out;
            }
            continue;
        }
        let first = first_unavailable.as_deref() == Some(p.name_any().as_str());
        if monotonic && !first && (!is_running_and_ready(p) || !is_available(p, min_ready, now)) {
            return out;
        }
        out.actions.push(Action::Delete(p.clone()));
        if monotonic {
            return out;
        }
    }
    let on_delete = spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()) == Some("OnDelete");
    if !on_delete {
        super::rolling::plan(set, &replicas, revs.update, now, &mut out);
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
