//! Every resource rkube serves has a printer: Name first (events aside), and as many cells as columns.

use std::time::SystemTime;

use rkube_apimachinery::catalogue::BUILTIN;
use serde_json::json;

#[test]
fn every_catalogue_resource_prints() {
    let now = SystemTime::now();
    // A sparse object: printers must cope with every optional field missing.
    let obj = json!({"metadata": {"name": "x", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"}});
    for r in BUILTIN {
        let columns = rkube_printers::columns(r.group, r.resource);
        let name_at = columns.iter().position(|c| c.format == "name");
        if r.resource == "events" {
            // Upstream's event table leads with LAST SEEN and puts the (wide) Name column last.
            assert_eq!(name_at, Some(columns.len() - 1), "{}/{}", r.group, r.resource);
        } else {
            assert_eq!(name_at, Some(0), "{}/{}: Name first", r.group, r.resource);
            assert_eq!(columns[0].name, "Name");
        }
        let cells = rkube_printers::cells(r.group, r.resource, &obj, now);
        assert_eq!(cells.len(), columns.len(), "{}/{}: one cell per column", r.group, r.resource);
        let table =
            rkube_printers::table(r.group, r.resource, std::slice::from_ref(&obj), json!({}), "Metadata", true, now);
        assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(columns.len()));
        assert_eq!(table["rows"][0]["cells"].as_array().map(Vec::len), Some(columns.len()));
    }
}

#[test]
fn wide_columns_have_priority_one() {
    let names = |group: &str, resource: &str, priority: i32| -> Vec<String> {
        rkube_printers::columns(group, resource)
            .into_iter()
            .filter(|c| c.priority == priority)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(names("", "pods", 0), ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(names("", "pods", 1), ["IP", "Node", "Nominated Node", "Readiness Gates"]);
    assert_eq!(
        names("", "nodes", 1),
        ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]
    );
    assert_eq!(names("rbac.authorization.k8s.io", "rolebindings", 1), ["Users", "Groups", "ServiceAccounts"]);
    assert_eq!(names("", "events", 0), ["Last Seen", "Type", "Reason", "Object", "Message"]);
    assert_eq!(names("apiextensions.k8s.io", "customresourcedefinitions", 0), ["Name", "Created At"]);
}
