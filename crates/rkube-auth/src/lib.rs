//! rkube's authentication and authorization logic, with upstream's behaviour, claims and messages.
//!
//! | module | what |
//! | --- | --- |
//! | [`sa_token`] | service-account tokens: [`TokenIssuer`] (TokenRequest, legacy Secret tokens), [`TokenVerifier`] |
//! | [`sa_claims`] | token claims, the live objects a token depends on ([`Claims::lookups`]), the user it yields |
//! | [`bootstrap`] | bootstrap tokens `<id>.<secret>` against `kube-system/bootstrap-token-<id>` |
//! | [`reviews`] | TokenReview and SelfSubjectReview answers |
//! | [`mod@access_review`] | SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview |
//! | [`rbac`] | RBAC evaluation ([`Rbac::authorize`], [`Rbac::rules_for`]) with upstream's reason texts |
//! | [`user`] | [`UserInfo`], [`Attributes`], well-known groups and extra keys |
//!
//! **Invariant:** no IO. Objects come in and go out as `serde_json::Value` in upstream's JSON shapes;
//! the API server fetches what [`Claims::lookups`] and [`bound_object_ref`] name from its cache and
//! passes it in. Time is a parameter (`now`), never read from the clock, so every rule is testable.
//! All cryptography is aws-lc-rs, the project's one provider.

pub mod access_review;
pub mod bootstrap;
mod error;
mod jws;
pub mod rbac;
pub mod reviews;
pub mod sa_claims;
pub mod sa_token;
mod timefmt;
pub mod user;

pub use access_review::{
    AccessReviewKind, NonResourceRule, ResourceRule, UserRules, access_review, rules_review, rules_review_namespace,
};
pub use bootstrap::BootstrapToken;
pub use error::{BootstrapError, IssueError, KeyError, ReviewError, VerifyError};
pub use jws::Algorithm;
pub use rbac::{Rbac, allowed_reason, rule_allows};
pub use reviews::{TokenReviewOutcome, TokenReviewSpec, self_subject_review, token_review, token_review_spec};
pub use sa_claims::{Claims, Lookup, LookupKind, ObjectRef, ServiceAccountInfo, TokenKind};
pub use sa_token::{BoundObjectRef, IssuedToken, TokenIssuer, TokenVerifier, bound_object_ref};
pub use user::{Attributes, Authenticated, UserInfo, bearer_token};

#[cfg(test)]
mod tests {
    /// The API server shares these across request tasks.
    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::TokenIssuer>();
        check::<crate::TokenVerifier>();
        check::<crate::Rbac<'static>>();
        check::<crate::UserInfo>();
    }
}
