//! Defaulting and validation of built-in kinds as upstream's kube-apiserver (1.33) does them, on JSON objects in
//! upstream's shapes: `default_<kind>` fills in what `SetDefaults_*` (and the v1 conversions) fill in, and
//! `validate_<kind>` returns the per-field causes of a 422 Invalid, with upstream's field paths and messages.
//! Metadata (names, labels, annotations, immutable metadata) is the API server's generic registry's job.

mod affinity;
mod container;
pub mod cron;
mod env;
mod errs;
mod ip;
mod names;
mod podspec;
mod probe;
mod resources;
mod security;
mod selector;
mod value;
mod volume;

pub mod admission;
pub mod apps;
pub mod batch;
pub mod cluster;
pub mod config;
pub mod coordination;
pub mod crd;
pub mod discovery;
pub mod events;
pub mod intstr;
pub mod pod;
pub mod policy;
pub mod quantity;
pub mod quota;
pub mod rbac;
pub mod scheduling;
pub mod service;
pub mod storage;

use rkube_apimachinery::Cause;
use serde_json::Value;

pub use apps::{
    default_daemon_set, default_deployment, default_replica_set, default_replication_controller, default_stateful_set,
    validate_daemon_set, validate_deployment, validate_deployment_with, validate_replica_set,
    validate_replication_controller, validate_stateful_set,
};
pub use batch::{
    default_cron_job, default_job, validate_cron_job, validate_cron_job_with, validate_job, validate_job_with,
};
pub use cluster::{
    default_namespace, default_node, default_service_account, validate_namespace, validate_node,
    validate_service_account,
};
pub use config::{default_config_map, default_secret, validate_config_map, validate_secret};
pub use coordination::{default_lease, validate_lease};
pub use crd::{default_custom_resource_definition, validate_custom_resource_definition};
pub use discovery::{default_endpoint_slice, default_endpoints, validate_endpoint_slice, validate_endpoints};
pub use events::{default_event, validate_event, validate_events_k8s_io_event};
pub use intstr::IntOrString;
pub use pod::{default_pod, default_pod_template, validate_pod, validate_pod_template, validate_pod_with};
pub use policy::{default_pod_disruption_budget, validate_pod_disruption_budget};
pub use quantity::{Format, Quantity, QuantityError};
pub use quota::{default_limit_range, default_resource_quota, validate_limit_range, validate_resource_quota};
pub use rbac::{
    default_rbac, validate_cluster_role, validate_cluster_role_binding, validate_role, validate_role_binding,
};
pub use scheduling::{default_priority_class, validate_priority_class};
pub use service::{default_service, prepare_service_update, validate_service, validate_service_with};
pub use storage::{
    default_persistent_volume, default_persistent_volume_claim, validate_persistent_volume,
    validate_persistent_volume_claim,
};

/// Cluster settings that change what validation accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The NodePort range (`--service-node-port-range`), 30000-32767 by default.
    pub node_port_range: (u16, u16),
    /// Use the pre-1.32 environment variable name rule (RelaxedEnvironmentVariableValidation off).
    pub strict_env_names: bool,
    /// Whether privileged containers are allowed (`--allow-privileged`).
    pub allow_privileged: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { node_port_range: (30000, 32767), strict_env_names: false, allow_privileged: true }
    }
}

/// Fills in upstream's defaults for an object of `group`/`resource` (plural, lowercase); unknown kinds are left alone.
pub fn default(group: &str, resource: &str, obj: &mut Value) {
    match (group, resource) {
        ("", "pods") => default_pod(obj),
        ("", "podtemplates") => default_pod_template(obj),
        ("", "services") => default_service(obj),
        ("", "replicationcontrollers") => default_replication_controller(obj),
        ("", "configmaps") => default_config_map(obj),
        ("", "secrets") => default_secret(obj),
        ("", "namespaces") => default_namespace(obj),
        ("", "serviceaccounts") => default_service_account(obj),
        ("", "nodes") => default_node(obj),
        ("", "events") | ("events.k8s.io", "events") => default_event(obj),
        ("", "endpoints") => default_endpoints(obj),
        ("", "limitranges") => default_limit_range(obj),
        ("", "resourcequotas") => default_resource_quota(obj),
        ("", "persistentvolumes") => default_persistent_volume(obj),
        ("", "persistentvolumeclaims") => default_persistent_volume_claim(obj),
        ("apps", "deployments") => default_deployment(obj),
        ("apps", "replicasets") => default_replica_set(obj),
        ("apps", "statefulsets") => default_stateful_set(obj),
        ("apps", "daemonsets") => default_daemon_set(obj),
        ("batch", "jobs") => default_job(obj),
        ("batch", "cronjobs") => default_cron_job(obj),
        ("coordination.k8s.io", "leases") => default_lease(obj),
        ("discovery.k8s.io", "endpointslices") => default_endpoint_slice(obj),
        ("policy", "poddisruptionbudgets") => default_pod_disruption_budget(obj),
        ("scheduling.k8s.io", "priorityclasses") => default_priority_class(obj),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => default_rbac(obj),
        ("apiextensions.k8s.io", "customresourcedefinitions") => default_custom_resource_definition(obj),
        _ => {}
    }
}

/// Validates an object of `group`/`resource` on create (`old` None) or update, with default [`Options`].
pub fn validate(group: &str, resource: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_with(group, resource, obj, old, &Options::default())
}

/// Validates with explicit cluster [`Options`]; kinds without rules here return no causes.
pub fn validate_with(group: &str, resource: &str, obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    match (group, resource) {
        ("", "pods") => validate_pod_with(obj, old, options),
        ("", "podtemplates") => validate_pod_template(obj, old),
        ("", "services") => validate_service_with(obj, old, options),
        ("", "replicationcontrollers") => validate_replication_controller(obj, old),
        ("", "configmaps") => validate_config_map(obj, old),
        ("", "secrets") => validate_secret(obj, old),
        ("", "namespaces") => validate_namespace(obj, old),
        ("", "serviceaccounts") => validate_service_account(obj, old),
        ("", "nodes") => validate_node(obj, old),
        ("", "events") => validate_event(obj, old),
        ("events.k8s.io", "events") => validate_events_k8s_io_event(obj, old),
        ("", "endpoints") => validate_endpoints(obj, old),
        ("", "limitranges") => validate_limit_range(obj, old),
        ("", "resourcequotas") => validate_resource_quota(obj, old),
        ("", "persistentvolumes") => validate_persistent_volume(obj, old),
        ("", "persistentvolumeclaims") => validate_persistent_volume_claim(obj, old),
        ("apps", "deployments") => validate_deployment_with(obj, old, options),
        ("apps", "replicasets") => validate_replica_set(obj, old),
        ("apps", "statefulsets") => validate_stateful_set(obj, old),
        ("apps", "daemonsets") => validate_daemon_set(obj, old),
        ("batch", "jobs") => validate_job_with(obj, old, options),
        ("batch", "cronjobs") => validate_cron_job_with(obj, old, options),
        ("coordination.k8s.io", "leases") => validate_lease(obj, old),
        ("discovery.k8s.io", "endpointslices") => validate_endpoint_slice(obj, old),
        ("policy", "poddisruptionbudgets") => validate_pod_disruption_budget(obj, old),
        ("scheduling.k8s.io", "priorityclasses") => validate_priority_class(obj, old),
        ("rbac.authorization.k8s.io", "roles") => validate_role(obj, old),
        ("rbac.authorization.k8s.io", "clusterroles") => validate_cluster_role(obj, old),
        ("rbac.authorization.k8s.io", "rolebindings") => validate_role_binding(obj, old),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => validate_cluster_role_binding(obj, old),
        ("apiextensions.k8s.io", "customresourcedefinitions") => validate_custom_resource_definition(obj, old),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    #[test]
    fn dispatcher_routes_by_group_and_resource() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "bad key": "x"}}, "spec": {"containers": [{"name": "c"}]}}}});
        default("apps", "deployments", &mut d);
        assert_eq!(
            msgs(&validate("apps", "deployments", &d, None)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.template.spec.containers[0].image: Required value",
            ]
        );
        let mut cm = json!({"data": {"a": "b"}});
        default("", "configmaps", &mut cm);
        assert!(validate("", "configmaps", &cm, None).is_empty());
        assert!(validate("example.com", "widgets", &json!({}), None).is_empty());
    }

    #[test]
    fn options_change_node_port_range() {
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}});
        default("", "services", &mut svc);
        assert!(validate("", "services", &svc, None).is_empty());
        let narrow = Options { node_port_range: (32000, 32100), ..Options::default() };
        assert_eq!(validate_with("", "services", &svc, None, &narrow).len(), 1);
    }
}
