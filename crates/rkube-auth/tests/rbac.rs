//! RBAC evaluation: upstream's matching rules and reason texts.

use rkube_auth::{Attributes, Rbac, UserInfo, allowed_reason, rule_allows};
use serde_json::{Value, json};

fn attrs(verb: &str, group: &str, resource: &str, namespace: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
}

fn path(verb: &str, p: &str) -> Attributes {
    Attributes { verb: verb.into(), path: Some(p.into()), ..Default::default() }
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo { name: name.into(), groups: groups.iter().map(|g| (*g).to_owned()).collect(), ..Default::default() }
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({ "kind": "ClusterRole", "metadata": { "name": name }, "rules": rules })
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({ "kind": "Role", "metadata": { "name": name, "namespace": ns }, "rules": rules })
}

fn crb(name: &str, role: &str, subjects: Value) -> Value {
    json!({ "kind": "ClusterRoleBinding", "metadata": { "name": name }, "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role }, "subjects": subjects })
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({ "kind": "RoleBinding", "metadata": { "name": name, "namespace": ns }, "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role }, "subjects": subjects })
}

#[test]
fn wildcards_and_names() {
    let all = json!({ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] });
    assert!(rule_allows(&all, &attrs("delete", "apps", "deployments", "x")));
    assert!(!rule_allows(&all, &path("get", "/healthz")), "resource rules never allow paths");

    let named =
        json!({ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get", "update"] });
    let mut a = attrs("get", "", "configmaps", "x");
    assert!(!rule_allows(&named, &a), "a named rule does not allow an unnamed request (list)");
    a.name = "cfg".into();
    assert!(rule_allows(&named, &a));
    a.name = "other".into();
    assert!(!rule_allows(&named, &a));
    assert!(!rule_allows(&named, &attrs("get", "apps", "configmaps", "x")), "group must match");

    let sub = json!({ "apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"] });
    let mut log = attrs("get", "", "pods", "x");
    assert!(!rule_allows(&sub, &log), "pods/log does not allow pods");
    log.subresource = "log".into();
    assert!(rule_allows(&sub, &log));
    let scale = json!({ "apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"] });
    let mut s = attrs("get", "apps", "deployments", "x");
    s.subresource = "scale".into();
    assert!(rule_allows(&scale, &s));
}

#[test]
fn non_resource_urls() {
    let rule = json!({ "nonResourceURLs": ["/healthz", "/api/*", "/version**"], "verbs": ["get"] });
    assert!(rule_allows(&rule, &path("get", "/healthz")));
    assert!(!rule_allows(&rule, &path("get", "/healthz/etcd")));
    assert!(rule_allows(&rule, &path("get", "/api/v1")));
    assert!(rule_allows(&rule, &path("get", "/api/")));
    assert!(!rule_allows(&rule, &path("get", "/api")));
    assert!(rule_allows(&rule, &path("get", "/version/")));
    assert!(!rule_allows(&rule, &path("post", "/healthz")));
    let any = json!({ "nonResourceURLs": ["*"], "verbs": ["*"] });
    assert!(rule_allows(&any, &path("delete", "/anything")));
    assert!(!rule_allows(&any, &attrs("get", "", "pods", "x")), "URL rules never allow resources");
}

#[test]
fn cluster_admin_reason() {
    let roles = [cluster_role(
        "cluster-admin",
        json!([{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }, { "nonResourceURLs": ["*"], "verbs": ["*"] }]),
    )];
    let bindings = [crb(
        "cluster-admin",
        "cluster-admin",
        json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters" }]),
    )];
    let rbac = Rbac::new(&roles, &bindings, &[], &[]);
    let admin = user("system:admin", &["system:masters", "system:authenticated"]);
    assert_eq!(
        rbac.authorize(&admin, &attrs("create", "", "pods", "default")),
        (true, r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#.to_owned())
    );
    assert_eq!(rbac.authorize(&user("bob", &[]), &attrs("get", "", "pods", "default")), (false, String::new()));
    assert_eq!(
        allowed_reason(&bindings[0], &bindings[0]["subjects"][0]),
        r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
    );
}

#[test]
fn role_bindings_apply_in_their_namespace_only() {
    let roles =
        [role("dev", "reader", json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"] }]))];
    let cluster_roles =
        [cluster_role("edit", json!([{ "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"] }]))];
    let bindings = [
        rb("dev", "read-pods", "Role", "reader", json!([{ "kind": "User", "name": "alice" }])),
        rb("dev", "edit", "ClusterRole", "edit", json!([{ "kind": "ServiceAccount", "name": "ci" }])),
    ];
    let rbac = Rbac::new(&cluster_roles, &[], &roles, &bindings);
    let alice = user("alice", &[]);
    assert_eq!(
        rbac.authorize(&alice, &attrs("list", "", "pods", "dev")),
        (true, r#"RBAC: allowed by RoleBinding "read-pods/dev" of Role "reader" to User "alice""#.to_owned())
    );
    assert!(!rbac.authorize(&alice, &attrs("list", "", "pods", "prod")).0);
    assert!(!rbac.authorize(&alice, &attrs("list", "", "pods", "")).0, "cluster-wide list needs a cluster binding");

    // A ServiceAccount subject without a namespace means the binding's namespace.
    let ci = user("system:serviceaccount:dev:ci", &["system:serviceaccounts", "system:serviceaccounts:dev"]);
    assert_eq!(
        rbac.authorize(&ci, &attrs("patch", "apps", "deployments", "dev")),
        (
            true,
            r#"RBAC: allowed by RoleBinding "edit/dev" of ClusterRole "edit" to ServiceAccount "ci/dev""#.to_owned()
        )
    );
    let other_ci = user("system:serviceaccount:prod:ci", &[]);
    assert!(!rbac.authorize(&other_ci, &attrs("patch", "apps", "deployments", "dev")).0);
}

#[test]
fn service_account_subjects_of_cluster_bindings() {
    let roles = [cluster_role("view", json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }]))];
    let bindings = [
        crb("no-ns", "view", json!([{ "kind": "ServiceAccount", "name": "ci" }])),
        crb("with-ns", "view", json!([{ "kind": "ServiceAccount", "name": "ci", "namespace": "tools" }])),
    ];
    let rbac = Rbac::new(&roles, &bindings, &[], &[]);
    let (ok, reason) = rbac.authorize(&user("system:serviceaccount:tools:ci", &[]), &attrs("get", "", "pods", "x"));
    assert!(ok);
    assert_eq!(
        reason,
        r#"RBAC: allowed by ClusterRoleBinding "with-ns" of ClusterRole "view" to ServiceAccount "ci/tools""#
    );
    assert!(!rbac.authorize(&user("system:serviceaccount:default:ci", &[]), &attrs("get", "", "pods", "x")).0);
}

#[test]
fn missing_roles_show_in_the_reason() {
    let bindings = [crb("b", "ghost", json!([{ "kind": "Group", "name": "devs" }]))];
    let rbac = Rbac::new(&[], &bindings, &[], &[]);
    let devs = user("carol", &["devs"]);
    assert_eq!(
        rbac.authorize(&devs, &attrs("get", "", "pods", "")),
        (false, r#"RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found"#.to_owned())
    );
    let rules = rbac.rules_for(&devs, "default");
    assert_eq!(rules.evaluation_error, r#"clusterrole.rbac.authorization.k8s.io "ghost" not found"#);
    // Bindings to other users never resolve their role.
    assert_eq!(rbac.authorize(&user("dave", &[]), &attrs("get", "", "pods", "")), (false, String::new()));
}

#[test]
fn rules_for_is_the_union() {
    let cluster_roles = [
        cluster_role(
            "basic",
            json!([{ "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"] }]),
        ),
        cluster_role("discovery", json!([{ "nonResourceURLs": ["/api", "/api/*"], "verbs": ["get"] }])),
    ];
    let roles = [role(
        "dev",
        "cm",
        json!([{ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"] }]),
    )];
    let crbs = [
        crb("basic", "basic", json!([{ "kind": "Group", "name": "system:authenticated" }])),
        crb("discovery", "discovery", json!([{ "kind": "Group", "name": "system:authenticated" }])),
    ];
    let rbs = [rb("dev", "cm", "Role", "cm", json!([{ "kind": "User", "name": "alice" }]))];
    let rbac = Rbac::new(&cluster_roles, &crbs, &roles, &rbs);
    let alice = user("alice", &["system:authenticated"]);
    let rules = rbac.rules_for(&alice, "dev");
    assert_eq!(rules.resource_rules.len(), 2);
    assert_eq!(rules.resource_rules[1].resource_names, ["a"]);
    assert_eq!(rules.non_resource_rules.len(), 1);
    assert_eq!(rules.non_resource_rules[0].non_resource_urls, ["/api", "/api/*"]);
    assert!(!rules.incomplete && rules.evaluation_error.is_empty());
    assert_eq!(rbac.rules_for(&alice, "prod").resource_rules.len(), 1);
}
