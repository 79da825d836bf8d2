//! Node eligibility, tolerations and pinning of daemon pods.

use super::*;
use k8s_openapi::api::apps::v1::DaemonSetSpec;
use k8s_openapi::api::core::v1::NodeSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint { key: (*k).into(), effect: (*e).into(), ..Default::default() })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

fn ds(spec: PodSpec) -> DaemonSet {
    DaemonSet {
        spec: Some(DaemonSetSpec {
            template: PodTemplateSpec { metadata: None, spec: Some(spec) },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| (*v).into()).collect()),
    }
}

fn with_affinity(terms: Vec<NodeSelectorTerm>) -> PodSpec {
    PodSpec {
        affinity: Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn node_selector_and_affinity_choose_nodes() {
    let a = node("a", &[("disk", "ssd"), ("cores", "8")], &[]);
    let b = node("b", &[("disk", "hdd")], &[]);
    let sel = ds(PodSpec { node_selector: Some([("disk".into(), "ssd".into())].into()), ..Default::default() });
    assert_eq!(should_run(&a, &sel), (true, true));
    assert_eq!(should_run(&b, &sel), (false, false));
    let gt = ds(with_affinity(vec![NodeSelectorTerm {
        match_expressions: Some(vec![req("cores", "Gt", &["4"])]),
        match_fields: None,
    }]));
    assert!(should_run(&a, &gt).0);
    assert!(!should_run(&b, &gt).0);
    // Terms are ORed; NotIn matches a missing label; an empty term matches nothing.
    let or = ds(with_affinity(vec![
        NodeSelectorTerm::default(),
        NodeSelectorTerm { match_expressions: Some(vec![req("disk", "NotIn", &["ssd"])]), match_fields: None },
    ]));
    assert!(!should_run(&a, &or).0);
    assert!(should_run(&b, &or).0);
    let by_name = ds(with_affinity(vec![NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![req("metadata.name", "In", &["b"])]),
    }]));
    assert!(should_run(&b, &by_name).0);
    assert!(!should_run(&a, &by_name).0);
    let named = ds(PodSpec { node_name: Some("a".into()), ..Default::default() });
    assert!(should_run(&a, &named).0);
    assert_eq!(should_run(&b, &named), (false, false));
}

#[test]
fn taints_need_tolerations_and_noexecute_evicts() {
    let plain = ds(PodSpec::default());
    let no_schedule = node("n", &[], &[("dedicated", "NoSchedule")]);
    let no_execute = node("n", &[], &[("dedicated", "NoExecute")]);
    let prefer = node("n", &[], &[("dedicated", "PreferNoSchedule")]);
    assert_eq!(should_run(&no_schedule, &plain), (false, true));
    assert_eq!(should_run(&no_execute, &plain), (false, false));
    assert_eq!(should_run(&prefer, &plain), (true, true));
    let tolerant = ds(PodSpec {
        tolerations: Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    assert_eq!(should_run(&no_schedule, &tolerant), (true, true));
    assert_eq!(should_run(&no_execute, &tolerant), (true, true));
    // Daemon pods tolerate cordoned, not-ready and pressured nodes.
    let troubled = node(
        "n",
        &[],
        &[
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ],
    );
    assert_eq!(should_run(&troubled, &plain), (true, true));
    let net = node("n", &[], &[("node.kubernetes.io/network-unavailable", "NoSchedule")]);
    assert_eq!(should_run(&net, &plain), (false, true));
    assert_eq!(should_run(&net, &ds(PodSpec { host_network: Some(true), ..Default::default() })), (true, true));
}

#[test]
fn toleration_matching_is_upstreams() {
    let taint = Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), time_added: None };
    let t = |k: Option<&str>, op: Option<&str>, v: Option<&str>, e: Option<&str>| Toleration {
        key: k.map(Into::into),
        operator: op.map(Into::into),
        value: v.map(Into::into),
        effect: e.map(Into::into),
        toleration_seconds: None,
    };
    assert!(tolerates(&t(Some("k"), None, Some("v"), None), &taint));
    assert!(!tolerates(&t(Some("k"), None, Some("w"), None), &taint));
    assert!(tolerates(&t(None, Some("Exists"), None, None), &taint));
    assert!(!tolerates(&t(Some("k"), Some("Exists"), None, Some("NoExecute")), &taint));
}

#[test]
fn pods_are_pinned_with_tolerations_and_labels() {
    let mut d = ds(PodSpec {
        host_network: Some(true),
        tolerations: Some(vec![Toleration {
            key: Some("node.kubernetes.io/not-ready".into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            value: None,
        }]),
        ..with_affinity(vec![NodeSelectorTerm {
            match_expressions: Some(vec![req("disk", "In", &["ssd"])]),
            match_fields: None,
        }])
    });
    d.metadata.annotations = Some([(TEMPLATE_GENERATION_ANNOTATION.into(), "3".into())].into());
    let mut t = pod_template(&d, "abc");
    let labels = t.metadata.clone().unwrap_or_default().labels.unwrap_or_default();
    assert_eq!(labels.get(POD_REVISION_LABEL).map(String::as_str), Some("abc"));
    assert_eq!(labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str), Some("3"));
    let spec = t.spec.get_or_insert_with(PodSpec::default);
    let tols = spec.tolerations.clone().unwrap_or_default();
    let keys: Vec<&str> = tols.iter().filter_map(|t| t.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
            "node.kubernetes.io/network-unavailable",
        ]
    );
    // The user's toleration with the same key/operator/effect is replaced: no tolerationSeconds.
    assert!(tols.iter().all(|t| t.toleration_seconds.is_none()));
    pin_to_node(spec, "sim-3");
    let terms = &spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|r| r.node_selector_terms.clone())
        .unwrap_or_default();
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].match_fields.as_ref().map(Vec::len), Some(1));
    let pod = Pod { spec: Some(spec.clone()), ..Default::default() };
    assert_eq!(target_node(&pod).as_deref(), Some("sim-3"));
    let bound = Pod { spec: Some(PodSpec { node_name: Some("x".into()), ..spec.clone() }), ..Default::default() };
    assert_eq!(target_node(&bound).as_deref(), Some("x"));
}
