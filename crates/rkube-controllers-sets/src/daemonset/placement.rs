//! Where a DaemonSet's pods belong, as upstream's `NodeShouldRunDaemonPod`: the template's nodeName,
//! nodeSelector and required node affinity must fit the node, and the node's NoSchedule/NoExecute taints
//! must be tolerated by the pod (with the tolerations every daemon pod gets added). Also the pod template
//! as the controller creates it: those tolerations, the revision labels, and the node pinned through
//! required node affinity `matchFields metadata.name In [node]` so the scheduler binds it there.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
    PodTemplateSpec, Taint, Toleration,
};

use crate::history::POD_REVISION_LABEL;
pub(crate) use rkube_client::pods::tolerates;

/// The label carrying the DaemonSet's template generation (deprecated upstream, still written).
pub(crate) const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The DaemonSet annotation the API server keeps the template generation in.
pub(crate) const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The first taint among those `filter` keeps that no toleration tolerates.
fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// Adds `t` to `spec`'s tolerations, replacing one with the same key, operator, value and effect
/// (upstream's `AddOrUpdateTolerationInPodSpec`).
fn add_toleration(spec: &mut PodSpec, t: Toleration) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    let same =
        |o: &Toleration| o.key == t.key && o.operator == t.operator && o.value == t.value && o.effect == t.effect;
    match list.iter_mut().find(|o| same(o)) {
        Some(existing) => *existing = t,
        None => list.push(t),
    }
}

/// The tolerations every daemon pod gets (upstream's `AddOrUpdateDaemonPodTolerations`): it must survive
/// node problems and run where ordinary pods may not be scheduled.
pub(crate) fn add_daemon_tolerations(spec: &mut PodSpec) {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    };
    add_toleration(spec, exists("node.kubernetes.io/not-ready", "NoExecute"));
    add_toleration(spec, exists("node.kubernetes.io/unreachable", "NoExecute"));
    add_toleration(spec, exists("node.kubernetes.io/disk-pressure", "NoSchedule"));
    add_toleration(spec, exists("node.kubernetes.io/memory-pressure", "NoSchedule"));
    add_toleration(spec, exists("node.kubernetes.io/pid-pressure", "NoSchedule"));
    add_toleration(spec, exists("node.kubernetes.io/unschedulable", "NoSchedule"));
    if spec.host_network == Some(true) {
        add_toleration(spec, exists("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
}

/// Whether one node selector requirement on labels holds.
fn label_requirement(r: &NodeSelectorRequirement, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let v = labels.get(&r.key);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| values.contains(v)),
        "NotIn" => v.is_none_or(|v| !values.contains(v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(want)) = (v.and_then(|v| number(v)), values.first().and_then(|w| number(w))) else {
                return false;
            };
            if r.operator == "Gt" { have > want } else { have < want }
        }
        _ => false,
    }
}

/// Whether one field requirement holds (only `metadata.name` is a node field selector).
fn field_requirement(r: &NodeSelectorRequirement, node_name: &str) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match (r.key.as_str(), r.operator.as_str()) {
        ("metadata.name", "In") => values.iter().any(|v| v == node_name),
        ("metadata.name", "NotIn") => !values.iter().any(|v| v == node_name),
        _ => false,
    }
}

/// Whether a term matches: all its requirements hold; an empty term matches nothing.
fn term_matches(t: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or_default();
    let fields = t.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    exprs.iter().all(|r| label_requirement(r, &labels)) && fields.iter().all(|r| field_requirement(r, name))
}

/// The pod's nodeSelector and required node affinity against the node (upstream's
/// `GetRequiredNodeAffinity(pod).Match(node)`).
pub(crate) fn affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    match spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) {
        Some(NodeAffinity { required_during_scheduling_ignored_during_execution: Some(req), .. }) => {
            req.node_selector_terms.iter().any(|t| term_matches(t, node))
        }
        _ => true,
    }
}

/// `(should_run, should_continue_running)` for `ds` on `node` (upstream's `NodeShouldRunDaemonPod`): a
/// node whose NoSchedule taints are not tolerated gets no new pod, but a pod there keeps running unless a
/// NoExecute taint is not tolerated either.
pub(crate) fn should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let Some(ds_spec) = ds.spec.as_ref() else { return (false, false) };
    let mut spec = ds_spec.template.spec.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != name) {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !affinity_matches(&spec, node) {
        return (false, false);
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let blocking = |t: &Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
    if untolerated(&taints, &tolerations, blocking).is_some() {
        let evicting = untolerated(&taints, &tolerations, |t| t.effect == "NoExecute").is_some();
        return (false, !evicting);
    }
    (true, true)
}

/// The DaemonSet's template generation from the API server's annotation, if any.
pub(crate) fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata.annotations.as_ref()?.get(TEMPLATE_GENERATION_ANNOTATION)?.parse().ok()
}

/// The template pods are created from (upstream's `CreatePodTemplate`): daemon tolerations, the
/// generation and revision-hash labels.
pub(crate) fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut t = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    add_daemon_tolerations(t.spec.get_or_insert_with(PodSpec::default));
    let labels = t.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(Default::default);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(POD_REVISION_LABEL.to_owned(), hash.to_owned());
    }
    t
}

/// Pins a pod to `node` by required node affinity, replacing any required terms (they were checked
/// already), as upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`.
pub(crate) fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node.to_owned()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector { node_selector_terms: vec![term] });
}

/// The node a daemon pod is for: its nodeName, or before scheduling the `metadata.name In [node]` field
/// requirement (upstream's `GetTargetNodeName`).
pub(crate) fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_owned());
    }
    let req =
        spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?;
    req.node_selector_terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        (r.key == "metadata.name" && r.operator == "In" && values.len() == 1).then(|| values[0].clone())
    })
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
