//! RBAC evaluated as upstream's RBAC authorizer: the union of the rules of every role bound to the user
//! (no deny rules), with upstream's wildcards, subresource and non-resource URL matching, and its
//! reason texts (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`).

use std::collections::HashMap;

use serde_json::Value;

use crate::access_review::{NonResourceRule, ResourceRule, UserRules};
use crate::user::{Attributes, UserInfo, split_service_account_username};

/// A snapshot of the RBAC objects, indexed for evaluation. Build one per request from the API server's
/// cache, or keep one per cache revision.
#[derive(Debug, Clone, Default)]
pub struct Rbac<'a> {
    cluster_roles: HashMap<&'a str, &'a Value>,
    cluster_role_bindings: Vec<&'a Value>,
    roles: HashMap<(&'a str, &'a str), &'a Value>,
    role_bindings: HashMap<&'a str, Vec<&'a Value>>,
}

/// Where an applying rule came from: a binding and the subject in it that matched the user.
#[derive(Debug, Clone, Copy)]
pub struct RuleSource<'a> {
    /// The ClusterRoleBinding or RoleBinding.
    pub binding: &'a Value,
    /// The subject that matched.
    pub subject: &'a Value,
    /// Whether `binding` is a ClusterRoleBinding.
    pub cluster: bool,
}

impl std::fmt::Display for RuleSource<'_> {
    /// Upstream's describer: `ClusterRoleBinding "b" of ClusterRole "r" to Group "g"` or
    /// `RoleBinding "b/ns" of Role "r" to ServiceAccount "sa/ns"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = text(self.binding, "/metadata/name");
        let namespace = text(self.binding, "/metadata/namespace");
        let (role_kind, role_name) = (text(self.binding, "/roleRef/kind"), text(self.binding, "/roleRef/name"));
        if self.cluster {
            write!(
                f,
                "ClusterRoleBinding {name:?} of {role_kind} {role_name:?} to {}",
                describe_subject(self.subject, "")
            )
        } else {
            let binding = format!("{name}/{namespace}");
            write!(
                f,
                "RoleBinding {binding:?} of {role_kind} {role_name:?} to {}",
                describe_subject(self.subject, namespace)
            )
        }
    }
}

/// What the visitor is shown: a rule with its source, or an error resolving a binding's role.
#[derive(Debug, Clone)]
pub enum Visit<'a> {
    /// A rule that applies to the user.
    Rule(RuleSource<'a>, &'a Value),
    /// A binding applies but its role cannot be resolved (upstream's NotFound text).
    Error(String),
}

impl<'a> Rbac<'a> {
    /// Indexes the four kinds of RBAC objects (objects of every namespace in `roles`/`role_bindings`).
    /// Bindings are visited in the order given, which decides which binding a reason names.
    pub fn new(
        cluster_roles: &'a [Value],
        cluster_role_bindings: &'a [Value],
        roles: &'a [Value],
        role_bindings: &'a [Value],
    ) -> Rbac<'a> {
        let mut role_bindings_by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
        for b in role_bindings {
            role_bindings_by_ns.entry(text(b, "/metadata/namespace")).or_default().push(b);
        }
        Rbac {
            cluster_roles: cluster_roles.iter().map(|r| (text(r, "/metadata/name"), r)).collect(),
            cluster_role_bindings: cluster_role_bindings.iter().collect(),
            roles: roles.iter().map(|r| ((text(r, "/metadata/namespace"), text(r, "/metadata/name")), r)).collect(),
            role_bindings: role_bindings_by_ns,
        }
    }

    /// Upstream's `VisitRulesFor`: the rules of the ClusterRoleBindings, then (for a namespace) of the
    /// namespace's RoleBindings, that apply to `user`; the visitor returns `false` to stop.
    pub fn visit(&self, user: &UserInfo, namespace: &str, visitor: &mut dyn FnMut(Visit<'a>) -> bool) {
        let mut resolve = |binding: &'a Value, cluster: bool, ns: &str| -> bool {
            let subjects = binding.get("subjects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let Some(i) = applies_to(user, subjects, ns) else {
                return true;
            };
            match self.role_rules(binding, ns) {
                Err(e) => visitor(Visit::Error(e)),
                Ok(rules) => {
                    let source = RuleSource { binding, subject: &subjects[i], cluster };
                    rules.iter().all(|r| visitor(Visit::Rule(source, r)))
                }
            }
        };
        for b in &self.cluster_role_bindings {
            if !resolve(b, true, "") {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for b in self.role_bindings.get(namespace).map(Vec::as_slice).unwrap_or_default() {
            if !resolve(b, false, namespace) {
                return;
            }
        }
    }

    /// Upstream's RBAC `Authorize`: `(true, "RBAC: allowed by <source>")` for the first rule allowing
    /// the request; otherwise `(false, "")`, or `(false, "RBAC: <errors>")` when some binding's role
    /// could not be resolved. RBAC never denies outright: `false` is "no opinion".
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> (bool, String) {
        let mut allowed_by = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit(user, &attrs.namespace, &mut |v| match v {
            Visit::Rule(source, rule) if rule_allows(rule, attrs) => {
                allowed_by = Some(source);
                false
            }
            Visit::Rule(..) => true,
            Visit::Error(e) => {
                errors.push(e);
                true
            }
        });
        match allowed_by {
            Some(source) => (true, format!("RBAC: allowed by {source}")),
            None if errors.is_empty() => (false, String::new()),
            None => (false, format!("RBAC: {}", aggregate(&errors))),
        }
    }

    /// Upstream's `RulesFor` through the RBAC authorizer: every rule applying to `user` in `namespace`,
    /// split into resource and non-resource rules (a rule with both kinds lands in both lists), with
    /// role-resolution errors as the evaluation error. What a SelfSubjectRulesReview reports.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        let mut out = UserRules::default();
        let mut errors: Vec<String> = Vec::new();
        self.visit(user, namespace, &mut |v| {
            match v {
                Visit::Rule(_, rule) => {
                    let list = |k: &str| strings(rule.get(k));
                    let verbs = list("verbs");
                    if !list("resources").is_empty() {
                        out.resource_rules.push(ResourceRule {
                            verbs: verbs.clone(),
                            api_groups: list("apiGroups"),
                            resources: list("resources"),
                            resource_names: list("resourceNames"),
                        });
                    }
                    let urls = list("nonResourceURLs");
                    if !urls.is_empty() {
                        out.non_resource_rules.push(NonResourceRule { verbs, non_resource_urls: urls });
                    }
                }
                Visit::Error(e) => errors.push(e),
            }
            true
        });
        if !errors.is_empty() {
            out.evaluation_error = aggregate(&errors);
        }
        out
    }

    /// The rules of the role a binding refers to, or upstream's error text.
    fn role_rules(&self, binding: &'a Value, namespace: &str) -> Result<&'a [Value], String> {
        let kind = text(binding, "/roleRef/kind");
        let name = text(binding, "/roleRef/name");
        let role = match kind {
            "ClusterRole" => self.cluster_roles.get(name).copied(),
            "Role" => self.roles.get(&(namespace, name)).copied(),
            _ => return Err(format!("unsupported role reference kind: {kind:?}")),
        };
        match role {
            Some(r) => Ok(r.get("rules").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()),
            None => Err(format!("{}.rbac.authorization.k8s.io {name:?} not found", kind.to_lowercase())),
        }
    }
}

/// The index of the first subject in `subjects` that is `user` (upstream's `appliesTo`); `namespace`
/// is the binding's (empty for a ClusterRoleBinding), the default for ServiceAccount subjects.
pub fn applies_to(user: &UserInfo, subjects: &[Value], namespace: &str) -> Option<usize> {
    subjects.iter().position(|s| subject_is(user, s, namespace))
}

fn subject_is(user: &UserInfo, subject: &Value, namespace: &str) -> bool {
    let name = text(subject, "/name");
    match text(subject, "/kind") {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let ns = Some(text(subject, "/namespace")).filter(|n| !n.is_empty()).unwrap_or(namespace);
            !ns.is_empty() && split_service_account_username(&user.name) == Some((ns, name))
        }
        _ => false,
    }
}

/// `RBAC: allowed by <source>` for an allowing binding and its matching subject.
pub fn allowed_reason(binding: &Value, subject: &Value) -> String {
    let cluster = text(binding, "/kind") == "ClusterRoleBinding" || text(binding, "/metadata/namespace").is_empty();
    format!("RBAC: allowed by {}", RuleSource { binding, subject, cluster })
}

fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = text(subject, "/kind");
    let name = text(subject, "/name");
    if kind == "ServiceAccount" {
        let ns = Some(text(subject, "/namespace")).filter(|n| !n.is_empty()).unwrap_or(binding_namespace);
        return format!("{kind} {:?}", format!("{name}/{ns}"));
    }
    format!("{kind} {name:?}")
}

/// Upstream's `RuleAllows`: verb, group, resource (`*`, exact, `resource/subresource`, `*/subresource`)
/// and resource name for resource requests; verb and URL (`*`, exact, `prefix*`) for the others.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let has = |key: &str, want: &str| list(rule.get(key)).any(|v| v == "*" || v == want);
    if !has("verbs", &attrs.verb) {
        return false;
    }
    let Some(path) = &attrs.path else {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        return has("apiGroups", &attrs.group)
            && resource_matches(rule, &combined, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name);
    };
    list(rule.get("nonResourceURLs"))
        .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
}

fn resource_matches(rule: &Value, combined: &str, subresource: &str) -> bool {
    list(rule.get("resources")).any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

fn resource_name_matches(rule: &Value, name: &str) -> bool {
    let mut names = list(rule.get("resourceNames")).peekable();
    names.peek().is_none() || names.any(|n| n == name)
}

fn list(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    list(v).map(str::to_owned).collect()
}

fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Upstream's error aggregate: one message bare, several de-duplicated in brackets.
fn aggregate(errors: &[impl AsRef<str>]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_ref()) {
            seen.push(e.as_ref());
        }
    }
    match seen.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subresource_wildcard_needs_exact_subresource() {
        let rule = json!({ "apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"] });
        let mut a = Attributes {
            verb: "update".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            ..Default::default()
        };
        assert!(!rule_allows(&rule, &a));
        a.subresource = "scale".into();
        assert!(rule_allows(&rule, &a));
        a.subresource = "status".into();
        assert!(!rule_allows(&rule, &a));
    }

    #[test]
    fn aggregate_as_upstream() {
        assert_eq!(aggregate(&["a"]), "a");
        assert_eq!(aggregate(&["a", "b", "a"]), "[a, b]");
    }
}
