//! RBAC (rbac.authorization.k8s.io/v1): rules need verbs and resources (or non-resource URLs), bindings need a
//! valid, unchangeable roleRef and well-formed subjects.

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{child, idx, invalid_raw, invalid_str, not_supported_str, required};
use crate::names::{dns1123_subdomain, path_segment_name};
use crate::value::{arr, s, str_list};

const GROUP: &str = "rbac.authorization.k8s.io";

/// Defaults RBAC bindings: the roleRef's and User/Group subjects' `apiGroup` (`SetDefaults_Subject`).
pub fn default_rbac(obj: &mut Value) {
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for sub in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let unset = sub.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty);
            if unset && matches!(sub.get("kind").and_then(Value::as_str), Some("User" | "Group")) {
                sub.insert("apiGroup".into(), json!(GROUP));
            }
        }
    }
    if let Some(rr) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && rr.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        rr.insert("apiGroup".into(), json!(GROUP));
    }
}

fn validate_rules(obj: &Value, namespaced: bool) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (i, rule) in arr(obj, "rules").iter().enumerate() {
        let p = idx("rules", i);
        if arr(rule, "verbs").is_empty() {
            errs.push(required(&child(&p, "verbs"), "verbs must contain at least one value"));
        }
        let urls = str_list(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let raw = crate::errs::go_strings(&urls);
            if namespaced {
                errs.push(invalid_raw(
                    &child(&p, "nonResourceURLs"),
                    &raw,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(invalid_raw(
                    &child(&p, "nonResourceURLs"),
                    &raw,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(required(&child(&p, "apiGroups"), "resource rules must supply at least one api group"));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(required(&child(&p, "resources"), "resource rules must supply at least one resource"));
        }
        if !arr(rule, "resourceNames").is_empty() && arr(rule, "resources").len() > 1 {
            errs.push(required(&child(&p, "resourceNames"), "resource names cannot apply to multiple resources"));
        }
    }
    errs
}

/// Validates a Role.
pub fn validate_role(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    validate_rules(obj, true)
}

/// Validates a ClusterRole (aggregated roles may have their rules filled by the controller).
pub fn validate_cluster_role(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    validate_rules(obj, false)
}

fn validate_binding(obj: &Value, old: Option<&Value>, namespaced: bool) -> Vec<Cause> {
    let mut errs = Vec::new();
    let rr = obj.get("roleRef").unwrap_or(&Value::Null);
    let group = s(rr, "apiGroup");
    if group != GROUP {
        errs.push(not_supported_str("roleRef.apiGroup", group, &[GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    let kind = s(rr, "kind");
    if !kinds.contains(&kind) {
        errs.push(not_supported_str("roleRef.kind", kind, kinds));
    }
    let name = s(rr, "name");
    if name.is_empty() {
        errs.push(required("roleRef.name", ""));
    } else {
        errs.extend(path_segment_name(name).iter().map(|m| invalid_str("roleRef.name", name, m)));
    }
    for (i, sub) in arr(obj, "subjects").iter().enumerate() {
        let p = idx("subjects", i);
        let (name, group) = (s(sub, "name"), s(sub, "apiGroup"));
        if name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        }
        match s(sub, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.extend(dns1123_subdomain(name).iter().map(|m| invalid_str(&child(&p, "name"), name, m)));
                }
                if !group.is_empty() {
                    errs.push(not_supported_str(&child(&p, "apiGroup"), group, &[""]));
                }
                if !namespaced && s(sub, "namespace").is_empty() {
                    errs.push(required(&child(&p, "namespace"), ""));
                }
            }
            k @ ("User" | "Group") => {
                if name.is_empty() {
                    let what = if k == "User" { "user" } else { "group" };
                    errs.push(invalid_str(&child(&p, "name"), name, &format!("{what} name cannot be empty")));
                }
                if group != GROUP {
                    errs.push(not_supported_str(&child(&p, "apiGroup"), group, &[GROUP]));
                }
            }
            other => errs.push(not_supported_str(&child(&p, "kind"), other, &["ServiceAccount", "User", "Group"])),
        }
    }
    if let Some(old) = old {
        let orr = old.get("roleRef").unwrap_or(&Value::Null);
        if [("apiGroup"), ("kind"), ("name")].iter().any(|k| s(orr, k) != s(rr, k)) {
            let raw = format!("rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}", group, kind, name);
            errs.push(invalid_raw("roleRef", &raw, "cannot change roleRef"));
        }
    }
    errs
}

/// Validates a RoleBinding.
pub fn validate_role_binding(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_binding(obj, old, true)
}

/// Validates a ClusterRoleBinding.
pub fn validate_cluster_role_binding(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_binding(obj, old, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    #[test]
    fn roles() {
        assert!(
            validate_role(&json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}), None)
                .is_empty()
        );
        assert_eq!(
            msgs(&validate_role(&json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]}), None)),
            vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
        );
        assert_eq!(
            msgs(&validate_role(&json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}), None)),
            vec![
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
            ]
        );
        assert!(
            validate_cluster_role(&json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}), None)
                .is_empty()
        );
    }

    #[test]
    fn bindings() {
        let mut rb = json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "bob"}, {"kind": "ServiceAccount", "name": "sa"}]});
        default_rbac(&mut rb);
        assert_eq!(rb["roleRef"]["apiGroup"], GROUP);
        assert_eq!(rb["subjects"][0]["apiGroup"], GROUP);
        assert!(rb["subjects"][1].get("apiGroup").is_none());
        assert!(validate_role_binding(&rb, None).is_empty(), "{:?}", validate_role_binding(&rb, None));
        let crb = json!({"roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
        assert_eq!(
            msgs(&validate_cluster_role_binding(&crb, None)),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
            ]
        );
        let mut changed = rb.clone();
        changed["roleRef"]["name"] = json!("other");
        assert_eq!(
            msgs(&validate_role_binding(&changed, Some(&rb))),
            vec![
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
            ]
        );
    }
}
