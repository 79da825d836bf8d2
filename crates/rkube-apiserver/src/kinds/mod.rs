//! Kind-specific rules (upstream's "strategies"): name formats, defaulting, validation, status handling,
//! field selectors and graceful deletion. Kinds without special rules use [`Generic`].

pub(crate) mod csr;
mod daemonset;
mod namespace;
mod pod;
mod service;

use serde_json::Value;

use crate::meta::NameRule;
use crate::resource::ResourceDef;
use rkube_apimachinery::Cause;

/// The rules one kind adds to the generic registry.
pub trait Strategy: Send + Sync {
    /// Which name format objects must have.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }
    /// Whether `metadata.generation` is kept and bumped on spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }
    /// Whether a PUT to a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }
    /// Whether `propagationPolicy=Orphan` adds the `orphan` finalizer (objects that own others).
    fn default_gc_finalizers(&self) -> bool {
        true
    }
    /// Clears what clients may not set on create when the kind has a status subresource.
    fn reset_status_on_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    /// Kind-specific create preparation (server-set fields).
    fn prepare_create(&self, _obj: &mut Value) {}
    /// Kind-specific update preparation, after the generic merge.
    fn prepare_update(&self, _new: &mut Value, _old: &Value) {}
    /// Fills in defaults.
    fn default(&self, _obj: &mut Value) {}
    /// Validates an object (`old` on update).
    fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
        Vec::new()
    }
    /// Field selectors the kind supports beyond `metadata.name` and `metadata.namespace`.
    fn extra_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Field selectors the kind supports.
    fn selectable_fields(&self) -> Vec<&'static str> {
        let mut f = vec!["metadata.name", "metadata.namespace"];
        f.extend_from_slice(self.extra_fields());
        f
    }
    /// The value of a selectable field: the dotted path read from the object (missing reads as empty).
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let pointer = format!("/{}", field.replace('.', "/"));
        Some(match obj.pointer(&pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            // Upstream's selectable booleans read "false" when unset (e.g. spec.unschedulable).
            None if field == "spec.unschedulable" => "false".to_owned(),
            _ => String::new(),
        })
    }
    /// The grace period a delete gets (0 deletes at once, once finalizers allow).
    fn grace_period(&self, _obj: &Value, requested: Option<i64>) -> i64 {
        let _ = requested;
        0
    }
    /// Kind-specific changes when a delete is recorded but not yet done (e.g. namespace phase Terminating).
    fn prepare_graceful_delete(&self, _obj: &mut Value) {}
    /// Whether an object being deleted must still wait although no finalizers are left
    /// (a pod's grace period, a namespace's spec finalizers).
    fn deletion_blocked(&self, _obj: &Value) -> bool {
        false
    }
    /// Whether a finished delete answers with the object (true) or a `Status` (false).
    fn return_deleted_object(&self) -> bool {
        false
    }
}

/// The rules every kind gets unless it says otherwise.
pub struct Generic {
    /// Field selectors beyond name and namespace.
    pub fields: &'static [&'static str],
    /// Name format.
    pub names: NameRule,
    /// Generation tracking.
    pub generation: bool,
    /// Whether a PUT to a missing object creates it.
    pub create_on_update: bool,
}

impl Strategy for Generic {
    fn name_rule(&self) -> NameRule {
        self.names
    }
    fn tracks_generation(&self) -> bool {
        self.generation
    }
    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }
    fn extra_fields(&self) -> &'static [&'static str] {
        self.fields
    }
}

static SUBDOMAIN: Generic =
    Generic { fields: &[], names: NameRule::Subdomain, generation: false, create_on_update: false };
static SUBDOMAIN_GEN: Generic =
    Generic { fields: &[], names: NameRule::Subdomain, generation: true, create_on_update: false };
static PATH_SEGMENT: Generic =
    Generic { fields: &[], names: NameRule::PathSegment, generation: false, create_on_update: false };
static CREATE_ON_UPDATE: Generic =
    Generic { fields: &[], names: NameRule::Subdomain, generation: false, create_on_update: true };

static EVENTS: Generic = Generic {
    fields: &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reportingController",
        "note",
    ],
    names: NameRule::PathSegment,
    generation: false,
    create_on_update: true,
};
static SECRETS: Generic =
    Generic { fields: &["type"], names: NameRule::Subdomain, generation: false, create_on_update: false };
static NODES: Generic =
    Generic { fields: &["spec.unschedulable"], names: NameRule::Subdomain, generation: false, create_on_update: false };
static REPLICASETS: Generic =
    Generic { fields: &["status.replicas"], names: NameRule::Subdomain, generation: true, create_on_update: false };
static JOBS: Generic =
    Generic { fields: &["status.successful"], names: NameRule::Subdomain, generation: true, create_on_update: false };

/// The strategy of a resource.
pub fn strategy(def: &ResourceDef) -> &'static dyn Strategy {
    match (def.group.as_str(), def.resource.as_str()) {
        ("", "namespaces") => &namespace::NAMESPACE,
        ("", "pods") => &pod::POD,
        ("", "services") => &service::SERVICE,
        ("", "endpoints") => &CREATE_ON_UPDATE,
        ("rbac.authorization.k8s.io", _) => &PATH_SEGMENT,
        ("", "events") | ("events.k8s.io", "events") => &EVENTS,
        ("", "secrets") => &SECRETS,
        ("", "nodes") => &NODES,
        ("", "replicationcontrollers") | ("apps", "replicasets") => &REPLICASETS,
        ("batch", "jobs") => &JOBS,
        ("apps", "daemonsets") => &daemonset::DAEMONSET,
        ("certificates.k8s.io", "certificatesigningrequests") => &csr::CSR,
        ("apps", _) | ("batch", _) | ("policy", _) => &SUBDOMAIN_GEN,
        ("apiextensions.k8s.io", _) => &SUBDOMAIN_GEN,
        _ if def.storage.contains('/') && !def.group.is_empty() && !def.group.ends_with("k8s.io") => &SUBDOMAIN_GEN,
        _ => &SUBDOMAIN,
    }
}
