//! What the replica controller needs to know about its kind: ReplicaSet (apps/v1, label-selector) and
//! ReplicationController (core/v1, map selector) behave alike, as upstream runs one controller for both.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::core::Selector;
use serde_json::{Value, json};

use rkube_client::Result;

/// One status condition, in either kind's shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Condition {
    /// `ReplicaFailure`.
    pub(crate) type_: String,
    /// `True`, `False` or `Unknown`.
    pub(crate) status: String,
    /// Machine-readable reason.
    pub(crate) reason: Option<String>,
    /// Human-readable message.
    pub(crate) message: Option<String>,
    /// When the status last changed.
    pub(crate) last_transition_time: Option<Time>,
}

/// The status fields both kinds share.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ReplicaStatus {
    /// Active pods.
    pub(crate) replicas: i32,
    /// Active pods whose labels match the template's.
    pub(crate) fully_labeled: i32,
    /// Ready pods.
    pub(crate) ready: i32,
    /// Pods ready for at least `minReadySeconds`.
    pub(crate) available: i32,
    /// The generation the status is for.
    pub(crate) observed_generation: i64,
    /// Conditions (only `ReplicaFailure` is written).
    pub(crate) conditions: Vec<Condition>,
}

impl ReplicaStatus {
    /// The merge patch writing this status over any previous one (zero counts are removed, as upstream's
    /// `omitempty` leaves them out).
    pub(crate) fn to_patch(&self) -> Value {
        let opt = |n: i64| if n == 0 { Value::Null } else { json!(n) };
        let conditions: Vec<ReplicaSetCondition> = self
            .conditions
            .iter()
            .map(|c| ReplicaSetCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
            .collect();
        json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": opt(self.fully_labeled.into()),
            "readyReplicas": opt(self.ready.into()),
            "availableReplicas": opt(self.available.into()),
            "observedGeneration": opt(self.observed_generation),
            "conditions": if conditions.is_empty() { Value::Null } else { json!(conditions) },
        }})
    }
}

/// A kind the replica controller manages.
pub(crate) trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The event source component (`replicaset-controller`, `replication-controller`).
    const COMPONENT: &'static str;
    /// `spec.replicas` (default 1).
    fn desired(&self) -> i32;
    /// The pod selector; `None` when it selects nothing usable (empty).
    fn pod_selector(&self) -> Result<Option<Selector>>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The status as stored.
    fn replica_status(&self) -> ReplicaStatus;
}

fn conditions<'a, I>(items: I) -> Vec<Condition>
where
    I: Iterator<Item = (&'a str, &'a str, &'a Option<String>, &'a Option<String>, &'a Option<Time>)>,
{
    items
        .map(|(t, s, r, m, l)| Condition {
            type_: t.to_owned(),
            status: s.to_owned(),
            reason: r.clone(),
            message: m.clone(),
            last_transition_time: l.clone(),
        })
        .collect()
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn pod_selector(&self) -> Result<Option<Selector>> {
        match &self.spec {
            Some(spec) => rkube_client::pods::selector(&spec.selector),
            None => Ok(None),
        }
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = &self.status else { return ReplicaStatus::default() };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: conditions(
                s.conditions
                    .iter()
                    .flatten()
                    .map(|c| (c.type_.as_str(), c.status.as_str(), &c.reason, &c.message, &c.last_transition_time)),
            ),
        }
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn pod_selector(&self) -> Result<Option<Selector>> {
        Ok(self.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(rkube_client::pods::map_selector))
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn replica_status(&self) -> ReplicaStatus {
        let Some(s) = &self.status else { return ReplicaStatus::default() };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: conditions(
                s.conditions
                    .iter()
                    .flatten()
                    .map(|c| (c.type_.as_str(), c.status.as_str(), &c.reason, &c.message, &c.last_transition_time)),
            ),
        }
    }
}
