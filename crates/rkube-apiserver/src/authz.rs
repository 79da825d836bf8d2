//! Authorization: may this user do this? `system:masters` may do anything (as upstream's
//! privileged group); everyone else is checked against RBAC.

use crate::authn::User;

/// What a request wants to do, as RBAC sees it (rkube-auth's type, shared with the reviews).
pub type Attributes = rkube_auth::Attributes;

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
