//! Core-group kinds besides pods, services, events and storage.
//!
//! Nodes, namespaces, config maps, secrets, service accounts, pod templates, replication controllers, quotas.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::column;
use crate::descriptions::{
    CM_DATA, NI_CR, NI_KERNEL, NI_KUBELET, NI_OS, NS_ADDR, RC_REPLICAS, RC_SELECTOR, RCS_READY, RCS_REPLICAS,
    SA_SECRETS, SECRET_DATA, SECRET_TYPE,
};
use crate::format::{containers, labels};
use crate::quantity::canonical;
use crate::value::{age, arr_at, bool_at, int_at, map_at, map_len, name, opt_int, str_at};

/// `podtemplates`: no age column upstream.
pub(crate) const POD_TEMPLATES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Containers", "Names of each container in the template."),
            column::string("Images", "Images referenced by each container in the template."),
            column::string("Pod Labels", "The labels for the pod template."),
        ]
    },
    cells: |o, _now| {
        let (names, images) = containers(arr_at(o, "/template/spec/containers"));
        vec![name(o), json!(names), json!(images), json!(labels(map_at(o, "/template/metadata/labels")))]
    },
};

/// `replicationcontrollers`.
pub(crate) const REPLICATION_CONTROLLERS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::integer("Desired", RC_REPLICAS),
            column::integer("Current", RCS_REPLICAS),
            column::integer("Ready", RCS_READY),
            column::age(),
            c,
            i,
            column::wide("Selector", RC_SELECTOR),
        ]
    },
    cells: |o, now| {
        let (names, images) = containers(arr_at(o, "/spec/template/spec/containers"));
        vec![
            name(o),
            // spec.replicas defaults to 1.
            json!(opt_int(o, "/spec/replicas").unwrap_or(1)),
            json!(int_at(o, "/status/replicas")),
            json!(int_at(o, "/status/readyReplicas")),
            age(o, now),
            json!(names),
            json!(images),
            json!(labels(map_at(o, "/spec/selector"))),
        ]
    },
};

/// `namespaces`.
pub(crate) const NAMESPACES: Printer = Printer {
    columns: || vec![column::name(), column::string("Status", "The status of the namespace"), column::age()],
    cells: |o, now| {
        // status.phase defaults to Active.
        let phase = match str_at(o, "/status/phase") {
            "" => "Active",
            p => p,
        };
        vec![name(o), json!(phase), age(o, now)]
    },
};

/// `configmaps`: DATA counts `data` and `binaryData` keys.
pub(crate) const CONFIG_MAPS: Printer = Printer {
    columns: || vec![column::name(), column::string("Data", CM_DATA), column::age()],
    cells: |o, now| vec![name(o), json!(map_len(o, "/data") + map_len(o, "/binaryData")), age(o, now)],
};

/// `secrets`.
pub(crate) const SECRETS: Printer = Printer {
    columns: || {
        vec![column::name(), column::string("Type", SECRET_TYPE), column::string("Data", SECRET_DATA), column::age()]
    },
    cells: |o, now| {
        // type defaults to Opaque.
        let type_ = match str_at(o, "/type") {
            "" => "Opaque",
            t => t,
        };
        vec![name(o), json!(type_), json!(map_len(o, "/data")), age(o, now)]
    },
};

/// `serviceaccounts`.
pub(crate) const SERVICE_ACCOUNTS: Printer = Printer {
    columns: || vec![column::name(), column::string("Secrets", SA_SECRETS), column::age()],
    cells: |o, now| vec![name(o), json!(arr_at(o, "/secrets").len()), age(o, now)],
};

/// `resourcequotas`: REQUEST and LIMIT as `resource: used/hard` lists.
pub(crate) const RESOURCE_QUOTAS: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string(
                "Request",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            column::string(
                "Limit",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
            column::age(),
        ]
    },
    cells: |o, now| {
        let (request, limit) = quota_columns(o);
        vec![name(o), json!(request), json!(limit), age(o, now)]
    },
};

/// The REQUEST and LIMIT cells: every hard limit, sorted by resource name, `limits.*` ones in LIMIT.
fn quota_columns(o: &Value) -> (String, String) {
    let mut request = Vec::new();
    let mut limit = Vec::new();
    let Some(hard) = map_at(o, "/status/hard") else { return (String::new(), String::new()) };
    let mut resources: Vec<&String> = hard.keys().collect();
    resources.sort();
    for resource in resources {
        let used = canonical(map_at(o, "/status/used").and_then(|u| u.get(resource)));
        let entry = format!("{resource}: {used}/{}", canonical(hard.get(resource)));
        if resource.split('.').next() == Some("limits") && resource.contains('.') {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    (request.join(", "), limit.join(", "))
}

/// `nodes`.
pub(crate) const NODES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Status", "The status of the node"),
            column::string("Roles", "The roles of the node"),
            column::age(),
            column::string("Version", NI_KUBELET),
            column::wide("Internal-IP", NS_ADDR),
            column::wide("External-IP", NS_ADDR),
            column::wide("OS-Image", NI_OS),
            column::wide("Kernel-Version", NI_KERNEL),
            column::wide("Container-Runtime", NI_CR),
        ]
    },
    cells: node_cells,
};

fn node_cells(o: &Value, now: SystemTime) -> Vec<Value> {
    let info = |field: &str| match str_at(o, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_owned(),
        s => s.to_owned(),
    };
    vec![
        name(o),
        json!(node_status(o)),
        json!(node_roles(o)),
        age(o, now),
        json!(str_at(o, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(o, "InternalIP")),
        json!(node_address(o, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// `Ready`, `NotReady` or `Unknown` from the Ready condition, then `SchedulingDisabled` when cordoned.
fn node_status(o: &Value) -> String {
    // The last condition of a type wins, as in upstream's map of conditions.
    let ready = arr_at(o, "/status/conditions").iter().rev().find(|c| str_at(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(o, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role` label's value,
/// sorted; `<none>` without any.
fn node_roles(o: &Value) -> String {
    let mut roles: Vec<&str> = Vec::new();
    if let Some(l) = map_at(o, "/metadata/labels") {
        for (k, v) in l {
            let role = match k.strip_prefix("node-role.kubernetes.io/") {
                Some(role) => role,
                None if k == "kubernetes.io/role" => v.as_str().unwrap_or(""),
                None => "",
            };
            if !role.is_empty() {
                roles.push(role);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() { "<none>".to_owned() } else { roles.join(",") }
}

/// The first address of a type, or `<none>`.
fn node_address(o: &Value, type_: &str) -> String {
    arr_at(o, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map_or_else(|| "<none>".to_owned(), |a| str_at(a, "/address").to_owned())
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
