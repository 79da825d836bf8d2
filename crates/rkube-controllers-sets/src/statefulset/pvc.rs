//! A StatefulSet's PersistentVolumeClaims (upstream's claim helpers in `stateful_set_utils.go`): one claim
//! per template and ordinal, labelled with the set's selector labels, and owned as
//! `persistentVolumeClaimRetentionPolicy` says: Retain/Retain (the default) leaves them unowned;
//! whenDeleted=Delete makes the set their controller; whenScaled=Delete makes a scaled-down pod theirs.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

use super::ordinals::{claim_name, in_range, ordinal};

/// The claims `pod` uses, built from the set's templates.
pub(crate) fn claims_for(set: &StatefulSet, pod: &Pod) -> Vec<PersistentVolumeClaim> {
    let o = ordinal(pod);
    let Some(spec) = set.spec.as_ref() else { return Vec::new() };
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let mut c = t.clone();
            c.metadata.name = Some(claim_name(&t.name_any(), set, o));
            c.metadata.namespace = set.metadata.namespace.clone();
            c.metadata.labels.get_or_insert_with(Default::default).extend(selector_labels.clone());
            c.metadata.resource_version = None;
            c.metadata.uid = None;
            c.status = None;
            c
        })
        .collect()
}

/// `(when_scaled_delete, when_deleted_delete)`; anything but `Delete` is Retain.
fn policy(set: &StatefulSet) -> (bool, bool) {
    let p = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let del = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    (del(p.and_then(|p| p.when_scaled.as_ref())), del(p.and_then(|p| p.when_deleted.as_ref())))
}

/// Whether the policy never deletes claims on scale-down (so claims are reused and cannot be stale).
pub(crate) fn retains_on_scale(set: &StatefulSet) -> bool {
    !policy(set).0
}

struct Obj<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: String,
    uid: String,
}

fn set_obj(set: &StatefulSet) -> Obj<'_> {
    Obj {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: set.name_any(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
    }
}

fn pod_obj(pod: &Pod) -> Obj<'_> {
    Obj { api_version: "v1", kind: "Pod", name: pod.name_any(), uid: pod.metadata.uid.clone().unwrap_or_default() }
}

fn matches_ref(r: &OwnerReference, o: &Obj<'_>) -> bool {
    r.api_version == o.api_version && r.kind == o.kind && r.name == o.name
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or_default()
}

/// A reference to the object by kind and name but another uid: left by an earlier object of that name.
fn has_stale_ref(claim: &PersistentVolumeClaim, o: &Obj<'_>) -> bool {
    refs(claim).iter().find(|r| matches_ref(r, o)).is_some_and(|r| r.uid != o.uid)
}

fn has_ref(claim: &PersistentVolumeClaim, o: &Obj<'_>) -> bool {
    !o.uid.is_empty() && refs(claim).iter().any(|r| r.uid == o.uid)
}

/// Whether the claim belongs to a previous pod of this name (it may be deleted soon with that pod): the new
/// pod must wait for it to go (upstream's `PodClaimIsStale`).
pub(crate) fn stale_for_pod(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    has_stale_ref(claim, &pod_obj(pod))
}

fn unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if policy(set) == (false, false) {
        return false;
    }
    let (s, p) = (set_obj(set), pod_obj(pod));
    refs(claim).iter().any(|r| {
        if matches_ref(r, &s) {
            r.uid != s.uid
        } else if matches_ref(r, &p) {
            r.uid != p.uid
        } else {
            r.controller == Some(true)
        }
    })
}

/// Whether the claim's owners are as the policy wants (upstream's `isClaimOwnerUpToDate`); claims in an
/// unknown state (stale references, another controller) are left alone.
pub(crate) fn owners_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (s, p) = (set_obj(set), pod_obj(pod));
    if has_stale_ref(claim, &s) || has_stale_ref(claim, &p) {
        return true;
    }
    if unexpected_controller(claim, set, pod) {
        return !(has_ref(claim, &s) || has_ref(claim, &p));
    }
    let non_controller = refs(claim)
        .iter()
        .any(|r| (r.uid == s.uid || (!p.uid.is_empty() && r.uid == p.uid)) && r.controller != Some(true));
    if non_controller {
        return false;
    }
    let scaled_down = !in_range(set, pod);
    let (want_set, want_pod) = wanted(set, scaled_down);
    has_ref(claim, &s) == want_set && has_ref(claim, &p) == want_pod
}

/// Which owners the policy gives a claim: (the set, the pod).
fn wanted(set: &StatefulSet, scaled_down: bool) -> (bool, bool) {
    match policy(set) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    }
}

/// The claim's owner references as the policy wants them (upstream's `updateClaimOwnerRefForSetAndPod`).
pub(crate) fn wanted_owner_refs(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> Vec<OwnerReference> {
    let (s, p) = (set_obj(set), pod_obj(pod));
    let unexpected = unexpected_controller(claim, set, pod);
    let mut out: Vec<OwnerReference> =
        refs(claim).iter().filter(|r| !matches_ref(r, &s) && !matches_ref(r, &p)).cloned().collect();
    if unexpected {
        return out;
    }
    let (want_set, want_pod) = wanted(set, !in_range(set, pod));
    for (want, o) in [(want_set, &s), (want_pod, &p)] {
        if want && !o.uid.is_empty() && !out.iter().any(|r| r.uid == o.uid) {
            out.push(OwnerReference {
                api_version: o.api_version.to_owned(),
                kind: o.kind.to_owned(),
                name: o.name.clone(),
                uid: o.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "pvc_tests.rs"]
mod tests;
