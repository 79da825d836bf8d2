//! Who is asking and what they ask: the user and request attributes every authenticator and authorizer shares.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The group every authenticated user is in (upstream's `user.AllAuthenticated`).
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group that bypasses authorization (upstream's `user.SystemPrivilegedGroup`).
pub const MASTERS_GROUP: &str = "system:masters";
/// Every service account is in this group.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// Prefix of service-account user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
/// Extra key: the name of the pod a bound token belongs to.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// Extra key: the uid of the pod a bound token belongs to.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// Extra key: the node a bound token's pod runs on (or the node it is bound to).
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
/// Extra key: that node's uid.
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
/// Extra key: the credential's id, `JTI=<jti>` for bound tokens (upstream 1.30+).
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// An authenticated user, as upstream's `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// User name (`system:admin`, `system:serviceaccount:ns:name`, `system:bootstrap:abcdef`).
    pub name: String,
    /// The user's uid, empty when the authenticator knows none.
    pub uid: String,
    /// Groups, in the authenticator's order.
    pub groups: Vec<String>,
    /// Extra attributes (pod name, credential id, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and nothing else.
    pub fn new(name: impl Into<String>) -> UserInfo {
        UserInfo { name: name.into(), ..UserInfo::default() }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` as upstream's authenticated-group adder does after every successful
    /// authentication: unless the user is anonymous or already in it (or in `system:unauthenticated`).
    pub fn authenticated(mut self) -> UserInfo {
        let has = self.in_group(AUTHENTICATED_GROUP) || self.in_group("system:unauthenticated");
        if self.name != "system:anonymous" && !has {
            self.groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        self
    }

    /// The `authentication.k8s.io/v1` `UserInfo` JSON: `username`, `uid`, `groups`, `extra`, each omitted
    /// when empty (upstream's `omitempty`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.name.is_empty() {
            m.insert("username".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), json!(self.groups));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }

    /// For a service-account user name, its namespace and name.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        split_service_account_username(&self.name)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// The namespace and name in a service-account user name; `None` for any other user name (or a
/// malformed one, as upstream's `SplitUsername` rejects: an empty part or a `:` in the name).
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}

/// A service account's groups: `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![SERVICE_ACCOUNTS_GROUP.to_owned(), format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}")]
}

/// What a request wants to do, as an authorizer sees it (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection; or an HTTP verb for a path.
    pub verb: String,
    /// API group (empty for the core group).
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, empty if none.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Object name, empty if none.
    pub name: String,
    /// For a non-resource request (`/healthz`, `/api`): the path. `None` makes it a resource request.
    pub path: Option<String>,
}

impl Attributes {
    /// Whether this is a resource request (upstream's `IsResourceRequest`).
    pub fn is_resource_request(&self) -> bool {
        self.path.is_none()
    }
}

/// A successful authentication: who, and for which audiences the credential was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user, with `system:authenticated` added.
    pub user: UserInfo,
    /// The audiences the token is valid for, among those the request accepts.
    pub audiences: Vec<String>,
}

/// The token in an `Authorization` header value, as upstream's bearer-token authenticator reads it:
/// `Bearer <token>` (scheme case-insensitive, surrounding space trimmed); `None` for anything else,
/// including an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let mut parts = header.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The audiences an audience-unaware authenticator (bootstrap tokens, static tokens) answers for, as
/// upstream's audience-agnostic wrapper: the API's audiences that the request accepts. Empty means the
/// credential must be refused for this request.
pub fn audience_agnostic(api_audiences: &[String], requested: &[String]) -> Vec<String> {
    if requested.is_empty() {
        return api_audiences.to_vec();
    }
    requested.iter().filter(|a| api_audiences.contains(a)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_group_added_once() {
        let u = UserInfo { name: "bob".into(), groups: vec!["dev".into()], ..UserInfo::default() }.authenticated();
        assert_eq!(u.groups, ["dev", AUTHENTICATED_GROUP]);
        assert_eq!(u.clone().authenticated(), u);
        assert!(UserInfo::new("system:anonymous").authenticated().groups.is_empty());
    }

    #[test]
    fn service_account_names() {
        assert_eq!(service_account_username("ns", "sa"), "system:serviceaccount:ns:sa");
        assert_eq!(split_service_account_username("system:serviceaccount:ns:sa"), Some(("ns", "sa")));
        assert_eq!(split_service_account_username("system:serviceaccount:ns:"), None);
        assert_eq!(split_service_account_username("system:serviceaccount:ns:a:b"), None);
        assert_eq!(split_service_account_username("alice"), None);
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  bearer abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer  abc"), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn user_json_omits_empty() {
        assert_eq!(UserInfo::new("a").to_json(), json!({ "username": "a" }));
        let mut u = UserInfo::new("a");
        u.extra.insert("k".into(), vec!["v".into()]);
        assert_eq!(u.to_json(), json!({ "username": "a", "extra": { "k": ["v"] } }));
    }

    #[test]
    fn audience_agnostic_intersects() {
        let api = vec!["https://kubernetes.default.svc.cluster.local".to_owned()];
        assert_eq!(audience_agnostic(&api, &[]), api);
        assert_eq!(audience_agnostic(&api, &["vault".to_owned()]), Vec::<String>::new());
    }
}
