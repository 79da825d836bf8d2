//! The authentication review APIs (authentication.k8s.io/v1): TokenReview (webhooks and aggregated
//! servers check a bearer token) and SelfSubjectReview (`kubectl auth whoami`), answered as upstream.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::error::{ReviewError, VerifyError};
use crate::timefmt::rfc3339;
use crate::user::{Authenticated, UserInfo};

/// What a TokenReview asks: the token, and the audiences it must be valid for.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenReviewSpec {
    /// The bearer token.
    pub token: String,
    /// `spec.audiences`; empty means the API server's own audiences.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for TokenReviewSpec {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewSpec").field("audiences", &self.audiences).finish_non_exhaustive()
    }
}

/// Reads a TokenReview's spec; an empty token is upstream's BadRequest
/// `token is required for TokenReview in authentication`.
pub fn token_review_spec(body: &Value) -> Result<TokenReviewSpec, ReviewError> {
    let token = body.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
    if token.is_empty() {
        return Err(ReviewError::BadRequest("token is required for TokenReview in authentication".into()));
    }
    let audiences = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(TokenReviewSpec { token: token.to_owned(), audiences })
}

/// How the API server's token authenticators judged a reviewed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenReviewOutcome {
    /// Some authenticator accepted it.
    Authenticated(Authenticated),
    /// None did. `Some(error)` when an authenticator recognised the token and rejected it (an expired
    /// service-account token); `None` when no authenticator recognised it at all.
    Rejected(Option<String>),
}

impl TokenReviewOutcome {
    /// The outcome of the service-account authenticator alone: errors for tokens that are not
    /// service-account tokens at all count as "not recognised", as upstream.
    pub fn from_service_account(result: Result<Authenticated, VerifyError>) -> TokenReviewOutcome {
        match result {
            Ok(a) => TokenReviewOutcome::Authenticated(a),
            Err(e) if e.is_not_ours() => TokenReviewOutcome::Rejected(None),
            Err(e) => TokenReviewOutcome::Rejected(Some(e.to_string())),
        }
    }

    /// `status.error` as kube-apiserver writes it: `invalid bearer token` alone, or with the
    /// authenticator's error in upstream's aggregate form `[invalid bearer token, <error>]`.
    pub fn error_text(&self) -> Option<String> {
        match self {
            TokenReviewOutcome::Authenticated(_) => None,
            TokenReviewOutcome::Rejected(None) => Some("invalid bearer token".into()),
            TokenReviewOutcome::Rejected(Some(e)) => Some(format!("[invalid bearer token, {e}]")),
        }
    }
}

/// The TokenReview answer: the request echoed (token included, as upstream) with `status` filled in.
/// `status.user` is `{}` for a rejected token, as Go writes the empty struct.
pub fn token_review(body: &Value, outcome: &TokenReviewOutcome) -> Value {
    let mut spec = Map::new();
    if let Some(t) = body.pointer("/spec/token").filter(|t| t.as_str().is_some_and(|s| !s.is_empty())) {
        spec.insert("token".into(), t.clone());
    }
    if let Some(a) = body.pointer("/spec/audiences").filter(|a| a.as_array().is_some_and(|a| !a.is_empty())) {
        spec.insert("audiences".into(), a.clone());
    }
    let mut status = Map::new();
    match outcome {
        TokenReviewOutcome::Authenticated(a) => {
            status.insert("authenticated".into(), json!(true));
            status.insert("user".into(), a.user.to_json());
            if !a.audiences.is_empty() {
                status.insert("audiences".into(), json!(a.audiences));
            }
        }
        TokenReviewOutcome::Rejected(_) => {
            status.insert("user".into(), json!({}));
            status.insert("error".into(), json!(outcome.error_text()));
        }
    }
    json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": { "creationTimestamp": null },
        "spec": spec,
        "status": status,
    })
}

/// The SelfSubjectReview answer for the requesting `user` (`kubectl auth whoami` reads
/// `status.userInfo`); upstream stamps `metadata.creationTimestamp` with the time of the request.
pub fn self_subject_review(user: &UserInfo, now: SystemTime) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": { "creationTimestamp": rfc3339(now) },
        "status": { "userInfo": user.to_json() },
    })
}
