//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for, with upstream's columns and cells per kind.
//!
//! kubectl prints exactly the columns and cells the server returns (priority 0 for `get`, priority 1 too for
//! `-o wide`), so every column name, cell format and placeholder (`<none>`, `<pending>`, `<unset>`) follows
//! upstream's `pkg/printers/internalversion`. Like upstream's API server, rows always carry the wide cells: the
//! client drops the priority-1 columns itself. Everything here is pure: JSON objects in, JSON cells out; the
//! current time is a parameter so that ages are testable.
//!
//! Kinds without a printer of their own (roles, limit ranges, CRDs, ...) get upstream's default table,
//! `Name` and `Created At`; custom resources get their CRD's `additionalPrinterColumns` ([`custom_columns`]).

mod age;
mod apps;
mod batch;
mod certificates;
mod cluster;
mod column;
mod core;
mod custom;
mod default;
mod descriptions;
mod event;
mod format;
mod jsonpath;
mod pod;
mod quantity;
mod rbac;
mod service;
mod storage;
mod table;
#[cfg(test)]
mod tests_support;
mod value;

use std::time::SystemTime;

use serde_json::Value;

pub use age::{human_duration, translate_timestamp_since};
pub use column::Column;
pub use custom::{custom_cells, custom_columns, custom_table};
pub use table::table;

/// How one kind is printed: its column definitions and the cells of one object's row.
#[derive(Clone, Copy)]
struct Printer {
    columns: fn() -> Vec<Column>,
    cells: fn(&Value, SystemTime) -> Vec<Value>,
}

/// The printer of a built-in resource; upstream's default table for resources without one.
fn printer(group: &str, resource: &str) -> Printer {
    match (group, resource) {
        ("", "pods") => pod::PODS,
        ("", "podtemplates") => core::POD_TEMPLATES,
        ("", "replicationcontrollers") => core::REPLICATION_CONTROLLERS,
        ("", "namespaces") => core::NAMESPACES,
        ("", "configmaps") => core::CONFIG_MAPS,
        ("", "secrets") => core::SECRETS,
        ("", "serviceaccounts") => core::SERVICE_ACCOUNTS,
        ("", "resourcequotas") => core::RESOURCE_QUOTAS,
        ("", "nodes") => core::NODES,
        ("", "services") => service::SERVICES,
        ("", "endpoints") => service::ENDPOINTS,
        ("discovery.k8s.io", "endpointslices") => service::ENDPOINT_SLICES,
        ("", "events") => event::CORE_EVENTS,
        ("events.k8s.io", "events") => event::EVENTS_V1,
        ("", "persistentvolumes") => storage::PERSISTENT_VOLUMES,
        ("", "persistentvolumeclaims") => storage::PERSISTENT_VOLUME_CLAIMS,
        ("apps", "deployments") => apps::DEPLOYMENTS,
        ("apps", "replicasets") => apps::REPLICA_SETS,
        ("apps", "statefulsets") => apps::STATEFUL_SETS,
        ("apps", "daemonsets") => apps::DAEMON_SETS,
        ("apps", "controllerrevisions") => apps::CONTROLLER_REVISIONS,
        ("batch", "jobs") => batch::JOBS,
        ("batch", "cronjobs") => batch::CRON_JOBS,
        ("certificates.k8s.io", "certificatesigningrequests") => certificates::CERTIFICATE_SIGNING_REQUESTS,
        ("rbac.authorization.k8s.io", "rolebindings") => rbac::ROLE_BINDINGS,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => rbac::CLUSTER_ROLE_BINDINGS,
        ("coordination.k8s.io", "leases") => cluster::LEASES,
        ("scheduling.k8s.io", "priorityclasses") => cluster::PRIORITY_CLASSES,
        ("policy", "poddisruptionbudgets") => cluster::POD_DISRUPTION_BUDGETS,
        // Upstream registers no printer for roles, cluster roles, limit ranges, CRDs or the review kinds: their
        // storage falls back to the generic table convertor.
        _ => default::DEFAULT,
    }
}

/// The column definitions of a built-in resource's table (`group` empty for the core group; `resource` plural).
pub fn columns(group: &str, resource: &str) -> Vec<Column> {
    (printer(group, resource).columns)()
}

/// The cells of `obj`'s row, one per column of [`columns`], with ages measured at `now`.
pub fn cells(group: &str, resource: &str, obj: &Value, now: SystemTime) -> Vec<Value> {
    (printer(group, resource).cells)(obj, now)
}
