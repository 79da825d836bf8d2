//! Turns a request path and method into what is being asked (upstream's `RequestInfo`):
//! group, version, namespace, resource, name, subresource and verb.

use http::Method;

/// What a resource request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path, if any.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub resource: String,
    /// Object name, if the path names one.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `log`, ...), if any.
    pub subresource: Option<String>,
    /// The verb as RBAC sees it: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'static str,
}

/// How a path was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource (or subresource) request.
    Resource(RequestInfo),
    /// `/api`, `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery {
        /// The path segments after `/api` or `/apis`.
        group: Option<String>,
        /// The version, when the path names one.
        version: Option<String>,
        /// True under `/api` (the core group).
        legacy: bool,
    },
    /// Anything else (`/healthz`, `/version`, `/openapi/v2`, ...): handled by the non-resource routes.
    NonResource(String),
}

/// Parses `path` (without query) for `method`; `watch` says whether `?watch=true` was given.
pub fn parse(method: &Method, path: &str, watch: bool) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest, legacy) = match parts.as_slice() {
        ["api"] => return Target::Discovery { group: None, version: None, legacy: true },
        ["api", v] => return Target::Discovery { group: None, version: Some((*v).to_owned()), legacy: true },
        ["api", v, rest @ ..] => (String::new(), (*v).to_owned(), rest, true),
        ["apis"] => return Target::Discovery { group: None, version: None, legacy: false },
        ["apis", g] => return Target::Discovery { group: Some((*g).to_owned()), version: None, legacy: false },
        ["apis", g, v] => {
            return Target::Discovery { group: Some((*g).to_owned()), version: Some((*v).to_owned()), legacy: false };
        }
        ["apis", g, v, rest @ ..] => ((*g).to_owned(), (*v).to_owned(), rest, false),
        _ => return Target::NonResource(path.to_owned()),
    };
    let _ = legacy;
    // `/namespaces/<ns>/<resource>...` is namespaced, except `/namespaces/<name>[/<sub>]`, which is the namespace object.
    let (namespace, rest) = match rest {
        // `status` and `finalize` after a namespace name are the namespace's own subresources (as upstream).
        ["namespaces", _, sub, ..] if matches!(*sub, "status" | "finalize") => (None, rest.to_vec()),
        ["namespaces", ns, resource, tail @ ..] => (Some((*ns).to_owned()), {
            let mut v = vec![*resource];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [r] => ((*r).to_owned(), None, None),
        [r, n] => ((*r).to_owned(), Some((*n).to_owned()), None),
        [r, n, s] => ((*r).to_owned(), Some((*n).to_owned()), Some((*s).to_owned())),
        // pods/<name>/proxy/<path...> and the like: the rest belongs to the subresource.
        [r, n, s, ..] => ((*r).to_owned(), Some((*n).to_owned()), Some((*s).to_owned())),
        [] => return Target::NonResource(path.to_owned()),
    };
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", true) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    };
    Target::Resource(RequestInfo { group, version, namespace, resource, name, subresource, verb })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str) -> RequestInfo {
        match parse(&method, path, false) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods/web/log");
        assert_eq!(
            (r.namespace.as_deref(), r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref(), r.verb),
            (Some("default"), "pods", Some("web"), Some("log"), "get")
        );
        let r = res(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.namespace, r.resource.as_str(), r.name.as_deref(), r.verb),
            (None, "namespaces", Some("kube-system"), "get")
        );
        let r = res(Method::PUT, "/api/v1/namespaces/x/finalize");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref(), r.verb),
            ("namespaces", Some("x"), Some("finalize"), "update")
        );
        let r = res(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!((r.group.as_str(), r.namespace, r.verb), ("apps", None, "list"));
        let r = res(Method::DELETE, "/apis/apps/v1/namespaces/a/deployments");
        assert_eq!(r.verb, "deletecollection");
        assert!(matches!(
            parse(&Method::GET, "/api/v1/pods", true),
            Target::Resource(RequestInfo { verb: "watch", .. })
        ));
    }

    #[test]
    fn discovery_and_other_paths() {
        assert_eq!(
            parse(&Method::GET, "/apis/apps", false),
            Target::Discovery { group: Some("apps".into()), version: None, legacy: false }
        );
        assert_eq!(parse(&Method::GET, "/api", false), Target::Discovery { group: None, version: None, legacy: true });
        assert_eq!(parse(&Method::GET, "/healthz", false), Target::NonResource("/healthz".into()));
    }
}
