//! RBAC: Roles, ClusterRoles and their bindings, read from the watch cache, evaluated as upstream's
//! RBAC authorizer does (rules union; no deny rules).

use std::sync::Arc;

use serde_json::Value;

use crate::authn::User;
use crate::authz::{Attributes, Decision};
use crate::cache::Cache;

/// The RBAC authorizer over the cached RBAC objects.
pub struct Rbac {
    cache: Arc<Cache>,
    prefix: String,
}

impl Rbac {
    /// An authorizer reading roles and bindings under `prefix` (the store's key prefix) from `cache`.
    pub fn new(cache: Arc<Cache>, prefix: &str) -> Self {
        Rbac { cache, prefix: prefix.trim_end_matches('/').to_owned() }
    }

    fn objects(&self, storage: &str) -> Vec<Value> {
        let (objs, _) = self.cache.list(&format!("{}/{storage}/", self.prefix));
        objs.iter().map(|o| o.value.clone()).collect()
    }

    fn role_rules(&self, kind: &str, name: &str, namespace: &str) -> Vec<Value> {
        let key = match kind {
            "ClusterRole" => format!("{}/clusterroles/{name}", self.prefix),
            _ => format!("{}/roles/{namespace}/{name}", self.prefix),
        };
        self.cache
            .get(&key)
            .and_then(|o| o.value.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// Allows the request if any rule of any role bound to the user (or one of their groups) covers it.
    pub fn authorize(&self, user: &User, a: &Attributes) -> Decision {
        let bound = |b: &Value| {
            b.get("subjects").and_then(Value::as_array).is_some_and(|subjects| subjects.iter().any(|s| subject_matches(s, user, b)))
        };
        for b in self.objects("clusterrolebindings").iter().filter(|b| bound(b)) {
            let name = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
            if self.role_rules("ClusterRole", name, "").iter().any(|r| rule_allows(r, a)) {
                return Decision::Allow;
            }
        }
        if !a.namespace.is_empty() {
            for b in self.objects(&format!("rolebindings/{}", a.namespace)).iter().filter(|b| bound(b)) {
                let kind = b.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
                let name = b.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
                if self.role_rules(kind, name, &a.namespace).iter().any(|r| rule_allows(r, a)) {
                    return Decision::Allow;
                }
            }
        }
        Decision::Deny(String::new())
    }
}

fn subject_matches(s: &Value, user: &User, binding: &Value) -> bool {
    let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .or_else(|| binding.pointer("/metadata/namespace").and_then(Value::as_str))
                .unwrap_or_default();
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn has(list: Option<&Value>, item: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|l| l.iter().any(|v| v.as_str() == Some("*") || v.as_str() == Some(item)))
}

fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(rule.get("verbs"), &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return rule.get("nonResourceURLs").and_then(Value::as_array).is_some_and(|urls| {
            urls.iter().filter_map(Value::as_str).any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p)))
        });
    }
    let resource = if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
    let resource_ok = rule.get("resources").and_then(Value::as_array).is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            r == "*" || r == resource || (!a.subresource.is_empty() && r == format!("*/{}", a.subresource))
        })
    });
    let names_ok = match rule.get("resourceNames").and_then(Value::as_array) {
        Some(names) if !names.is_empty() => names.iter().any(|n| n.as_str() == Some(a.name.as_str())),
        _ => true,
    };
    has(rule.get("apiGroups"), &a.group) && resource_ok && names_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, resource: &str, ns: &str) -> Attributes {
        Attributes { verb: verb.into(), resource: resource.into(), namespace: ns.into(), ..Default::default() }
    }

    #[test]
    fn rules() {
        let r = json!({ "apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"] });
        assert!(rule_allows(&r, &attrs("get", "pods", "a")));
        assert!(!rule_allows(&r, &attrs("delete", "pods", "a")));
        let mut log = attrs("get", "pods", "a");
        log.subresource = "log".into();
        assert!(rule_allows(&r, &log));
        let named = json!({ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["x"] });
        let mut x = attrs("get", "configmaps", "a");
        x.name = "x".into();
        assert!(rule_allows(&named, &x));
        x.name = "y".into();
        assert!(!rule_allows(&named, &x));
        let nr = json!({ "nonResourceURLs": ["/healthz", "/api/*"], "verbs": ["get"] });
        let mut p = attrs("get", "", "");
        p.path = Some("/api/v1".into());
        assert!(rule_allows(&nr, &p));
    }
}
