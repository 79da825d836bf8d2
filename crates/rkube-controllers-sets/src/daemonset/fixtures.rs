//! Test fixtures: nodes, DaemonSets and daemon pods in given states.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::history::POD_REVISION_LABEL;

pub(crate) fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn nodes(n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| Node {
            metadata: ObjectMeta { name: Some(format!("n{i}")), ..Default::default() },
            ..Default::default()
        })
        .collect()
}

pub(crate) fn daemonset(max_unavailable: Option<IntOrString>, max_surge: Option<IntOrString>) -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta { name: Some("ds".into()), namespace: Some("ns".into()), ..Default::default() },
        spec: Some(DaemonSetSpec {
            template: PodTemplateSpec { metadata: None, spec: Some(PodSpec::default()) },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet { max_unavailable, max_surge }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A pod named `name` for node `node` with revision `hash`, created at `created` (seconds), ready since
/// `ready_at` when given.
pub(crate) fn pod(name: &str, node: &str, hash: &str, created: i64, ready_at: Option<i64>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(at(created))),
            labels: Some([(POD_REVISION_LABEL.to_owned(), hash.to_owned())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: Some(node.into()), ..Default::default() }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(at(t))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    }
}
