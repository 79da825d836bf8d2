//! Authorization: may this user do this? `system:masters` may do anything (as upstream's
//! privileged group); everyone else is checked against RBAC.

use crate::authn::User;

/// What a request wants to do, as RBAC sees it.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection (or a non-resource verb).
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Object name, if any.
    pub name: String,
    /// For non-resource requests: the path.
    pub path: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied, with the reason for logs and SubjectAccessReview.
    Deny(String),
}

/// Decides one request. RBAC evaluation lives in [`crate::rbac`].
pub fn authorize(rbac: &crate::rbac::Rbac, user: &User, attrs: &Attributes) -> Decision {
    if user.in_group("system:masters") {
        return Decision::Allow;
    }
    rbac.authorize(user, attrs)
}
