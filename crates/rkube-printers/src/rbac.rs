//! Role bindings and cluster role bindings: ROLE, and in wide USERS, GROUPS, SERVICEACCOUNTS.
//!
//! Roles and cluster roles have no printer upstream: they get the default table.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::column::{self, Column};
use crate::descriptions::{CRB_ROLEREF, RB_ROLEREF};
use crate::value::{age, arr_at, name, str_at};

/// `rolebindings`.
pub(crate) const ROLE_BINDINGS: Printer = Printer { columns: || binding_columns(RB_ROLEREF, "roleBinding"), cells };

/// `clusterrolebindings`.
pub(crate) const CLUSTER_ROLE_BINDINGS: Printer =
    Printer { columns: || binding_columns(CRB_ROLEREF, "clusterRoleBinding"), cells };

fn binding_columns(role_ref: &str, what: &str) -> Vec<Column> {
    vec![
        column::name(),
        column::string("Role", role_ref),
        column::age(),
        column::wide("Users", &format!("Users in the {what}")),
        column::wide("Groups", &format!("Groups in the {what}")),
        column::wide("ServiceAccounts", &format!("ServiceAccounts in the {what}")),
    ]
}

fn cells(o: &Value, now: SystemTime) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for s in arr_at(o, "/subjects") {
        match str_at(s, "/kind") {
            "User" => users.push(str_at(s, "/name").to_owned()),
            "Group" => groups.push(str_at(s, "/name").to_owned()),
            "ServiceAccount" => service_accounts.push(format!("{}/{}", str_at(s, "/namespace"), str_at(s, "/name"))),
            _ => {}
        }
    }
    vec![
        name(o),
        json!(format!("{}/{}", str_at(o, "/roleRef/kind"), str_at(o, "/roleRef/name"))),
        age(o, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn bindings() {
        let now = at("2024-01-01T00:00:00Z");
        let b = json!({
            "metadata": {"name": "admins", "creationTimestamp": ago(now, 10)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "system:masters"},
                {"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"}
            ]
        });
        let want = vec![
            json!("admins"),
            json!("ClusterRole/cluster-admin"),
            json!("10s"),
            json!("alice, bob"),
            json!("system:masters"),
            json!("kube-system/default"),
        ];
        assert_eq!(crate::cells("rbac.authorization.k8s.io", "clusterrolebindings", &b, now), want);
        assert_eq!(crate::cells("rbac.authorization.k8s.io", "rolebindings", &b, now), want);
        let roles = crate::columns("rbac.authorization.k8s.io", "roles");
        assert_eq!(roles.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Name", "Created At"]);
        let role = json!({"metadata": {"name": "view", "creationTimestamp": "2023-05-06T07:08:09Z"}});
        assert_eq!(
            crate::cells("rbac.authorization.k8s.io", "clusterroles", &role, now),
            vec![json!("view"), json!("2023-05-06T07:08:09Z")]
        );
    }
}
