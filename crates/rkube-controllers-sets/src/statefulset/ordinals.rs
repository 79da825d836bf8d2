//! StatefulSet identities (upstream's `stateful_set_utils.go`): pods named `<set>-<ordinal>` from
//! `spec.ordinals.start`, labelled with their name and index, with hostname and subdomain; claims named
//! `<template>-<set>-<ordinal>`; the pod a revision of the set makes for an ordinal.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec, Volume};
use kube::ResourceExt;

use crate::history::POD_REVISION_LABEL;

/// The label naming a StatefulSet pod.
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with a StatefulSet pod's ordinal.
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `(parent, ordinal)` from a pod name `<parent>-<digits>` (upstream's `getParentNameAndOrdinal`);
/// `None` when the name has no ordinal.
pub(crate) fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()?))
}

/// A pod's ordinal, -1 when it has none.
pub(crate) fn ordinal(pod: &Pod) -> i32 {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default()).map_or(-1, |(_, o)| o)
}

/// Whether `pod` is named as a member of `set`.
pub(crate) fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default()).is_some_and(|(p, _)| p == set.name_any())
}

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub(crate) fn start(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start).unwrap_or(0)
}

/// `spec.replicas` (1 by default).
pub(crate) fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the pod's ordinal is one the set runs now.
pub(crate) fn in_range(set: &StatefulSet, pod: &Pod) -> bool {
    let o = ordinal(pod);
    o >= start(set) && o < start(set) + replicas(set)
}

/// `<set>-<ordinal>`.
pub(crate) fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.name_any())
}

/// `<claim template>-<set>-<ordinal>`.
pub(crate) fn claim_name(template: &str, set: &StatefulSet, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", set.name_any())
}

/// Whether the pod has its name, namespace and labels as a member of `set` (upstream's `identityMatches`).
pub(crate) fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let Some((parent, o)) = parent_and_ordinal(name) else { return false };
    let labels = pod.labels();
    parent == set.name_any()
        && name == pod_name(set, o)
        && pod.metadata.namespace == set.metadata.namespace
        && labels.get(POD_NAME_LABEL).map(String::as_str) == Some(name)
        && labels.get(POD_INDEX_LABEL) == Some(&o.to_string())
}

/// Sets the identity labels (upstream's `updateIdentity`).
pub(crate) fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let o = ordinal(pod);
    pod.metadata.name = Some(pod_name(set, o));
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_owned(), pod_name(set, o));
    labels.insert(POD_INDEX_LABEL.to_owned(), o.to_string());
}

fn claim_templates(set: &StatefulSet) -> Vec<String> {
    let templates = set.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref());
    templates.into_iter().flatten().map(|c| c.name_any()).collect()
}

/// Whether each claim template has a volume of the pod pointing at the pod's claim (upstream's
/// `storageMatches`).
pub(crate) fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let o = ordinal(pod);
    if o < 0 {
        return false;
    }
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    claim_templates(set).iter().all(|t| {
        volumes.iter().any(|v| {
            &v.name == t && v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == claim_name(t, set, o))
        })
    })
}

/// Points one volume per claim template at the pod's claim, replacing template volumes of the same name
/// (upstream's `updateStorage`).
pub(crate) fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let o = ordinal(pod);
    let templates = claim_templates(set);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = templates
        .iter()
        .map(|t| Volume {
            name: t.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(t, set, o),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(current.into_iter().filter(|v| !templates.contains(&v.name)));
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// The pod `template` (a revision of `set`) makes for `ordinal`, labelled with `revision` (upstream's
/// `newStatefulSetPod` and `setPodRevision`).
pub(crate) fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let mut pod = rkube_client::pods::pod_from_template(template, set, &format!("{}-", set.name_any()));
    pod.metadata.name = Some(pod_name(set, ordinal));
    update_identity(set, &mut pod);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    spec.hostname = Some(pod_name(set, ordinal));
    spec.subdomain = set.spec.as_ref().and_then(|s| s.service_name.clone()).filter(|s| !s.is_empty());
    update_storage(set, &mut pod);
    pod.metadata.labels.get_or_insert_with(BTreeMap::new).insert(POD_REVISION_LABEL.to_owned(), revision.to_owned());
    pod
}

/// The revision a pod runs (its `controller-revision-hash` label), `""` when unlabelled.
pub(crate) fn pod_revision(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(POD_REVISION_LABEL)).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetOrdinals, StatefulSetSpec};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn set(start_at: Option<i32>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(3),
                service_name: Some("nginx".into()),
                ordinals: start_at.map(|s| StatefulSetOrdinals { start: Some(s) }),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta { name: Some("www".into()), ..Default::default() },
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn names_parse_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
    }

    #[test]
    fn new_pods_have_their_identity_storage_and_revision() {
        let s = set(Some(5));
        let pod = new_pod(&s, &PodTemplateSpec::default(), 6, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-6"));
        assert_eq!(pod.labels().get(POD_NAME_LABEL).map(String::as_str), Some("web-6"));
        assert_eq!(pod.labels().get(POD_INDEX_LABEL).map(String::as_str), Some("6"));
        assert_eq!(pod_revision(&pod), "web-abc");
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-6"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vols = spec.volumes.unwrap_or_default();
        assert_eq!(vols[0].persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()), Some("www-web-6"));
        assert!(identity_matches(&s, &pod) && storage_matches(&s, &pod));
        assert!(in_range(&s, &pod));
        assert!(!in_range(&set(None), &pod));
        assert!(is_member(&s, &pod));
        let mut bare = pod.clone();
        bare.metadata.labels = None;
        assert!(!identity_matches(&s, &bare));
        update_identity(&s, &mut bare);
        assert!(identity_matches(&s, &bare));
    }
}
