//! Facts about pods and owners that every workload controller and the scheduler read the same way
//! (upstream's `podutil` and `controller_utils`): whether a pod is active, ready, available; which object
//! controls an object; a pod made from a template for an owner.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

use crate::error::{Error, Result};

/// The pod's phase, `""` when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Succeeded or Failed: the pod's containers will not run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Counts toward a controller's replicas: not terminal and not being deleted (upstream's `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's `Ready` condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod's `Ready` condition last turned True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<k8s_openapi::jiff::Timestamp> {
    let c = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    if c.status != "True" {
        return None;
    }
    Some(c.last_transition_time.as_ref().map_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH, |t| t.0))
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: k8s_openapi::jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => now.as_second() - since.as_second() >= i64::from(min_ready_seconds),
    }
}

/// Whether `t` tolerates `taint` (upstream's `Toleration.ToleratesTaint`): an empty effect or key matches
/// any, operator `Exists` ignores the value, `Equal` (the default) compares it.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    if t.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` set, as upstream's
/// `NewControllerRef`), for its dependents' `ownerReferences`.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Parses a workload's label selector. An empty selector selects nothing here, as upstream's controllers
/// treat it (the API server refuses empty selectors on apps/v1 kinds anyway).
pub fn selector(sel: &LabelSelector) -> Result<Option<Selector>> {
    let parsed: Selector =
        sel.clone().try_into().map_err(|e| Error::Invalid(format!("invalid label selector: {e}")))?;
    Ok(if parsed.selects_all() { None } else { Some(parsed) })
}

/// A selector from a plain `key: value` map (ReplicationController, Service); empty selects nothing.
pub fn map_selector(map: &BTreeMap<String, String>) -> Option<Selector> {
    if map.is_empty() {
        return None;
    }
    let sel = LabelSelector { match_labels: Some(map.clone()), match_expressions: None };
    sel.try_into().ok()
}

/// Whether `labels` match `selector` (`None` matches nothing).
pub fn matches(selector: Option<&Selector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| s.matches(labels))
}

/// A new pod from `template` for `owner`: labels, annotations and spec from the template, `generateName`
/// `<prefix>` (upstream uses `<owner name>-`), and a controller reference to the owner. `finalizers` from
/// the template are kept, as upstream does.
pub fn pod_from_template<K: Resource<DynamicType = ()>>(
    template: &PodTemplateSpec,
    owner: &K,
    generate_name: &str,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_owned()),
            namespace: owner.meta().namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ready_pod(since_secs: i64) -> Pod {
        let t =
            k8s_openapi::jiff::Timestamp::from_second(since_secs).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(t)),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let pod = ready_pod(1000);
        let at = |s| k8s_openapi::jiff::Timestamp::from_second(s).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        assert!(is_ready(&pod));
        assert!(is_available(&pod, 0, at(1000)));
        assert!(!is_available(&pod, 10, at(1005)));
        assert!(is_available(&pod, 10, at(1010)));
        assert!(is_active(&pod));
        let mut done = pod.clone();
        if let Some(s) = done.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        assert!(!is_active(&done));
    }

    #[test]
    fn tolerations_match_taints_as_upstream() {
        let taint = Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), time_added: None };
        let tol = |key: &str, op: &str, value: &str, effect: &str| Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            effect: Some(effect.into()),
            toleration_seconds: None,
        };
        assert!(tolerates(&tol("k", "Equal", "v", "NoSchedule"), &taint));
        assert!(tolerates(&tol("k", "", "v", ""), &taint));
        assert!(tolerates(&tol("", "Exists", "", ""), &taint));
        assert!(!tolerates(&tol("k", "Equal", "w", "NoSchedule"), &taint));
        assert!(!tolerates(&tol("k", "Exists", "", "NoExecute"), &taint));
        assert!(!tolerates(&tol("other", "Exists", "", ""), &taint));
    }

    #[test]
    fn templates_become_owned_pods_and_selectors_match() {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web-5d".into());
        rs.metadata.namespace = Some("ns".into());
        rs.metadata.uid = Some("u1".into());
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: None,
        };
        let pod = pod_from_template(&template, &rs, "web-5d-");
        assert!(is_controlled_by(&pod.metadata, "u1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        let sel = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: None,
        };
        let parsed = selector(&sel).ok().flatten();
        assert!(matches(parsed.as_ref(), pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())));
        assert!(selector(&LabelSelector::default()).ok().flatten().is_none());
        assert!(!matches(None, &BTreeMap::new()));
    }
}
