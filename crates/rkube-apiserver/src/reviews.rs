//! The create-only APIs answered from rkube-auth: TokenRequest (`serviceaccounts/token`), TokenReview,
//! SelfSubjectReview (`kubectl auth whoami`), (Self|Local)SubjectAccessReview (`kubectl auth can-i`) and
//! SelfSubjectRulesReview (`kubectl auth can-i --list`).

use std::time::SystemTime;

use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::authn::{self, User};
use crate::resource::ResourceDef;
use crate::state::AppState;

/// Decides for reviews with upstream's reasons: `system:masters` first (outside RBAC, as upstream's
/// superuser authorizer), then the request authorizer's RBAC snapshot.
fn authorizer(app: &AppState) -> impl Fn(&rkube_auth::UserInfo, &rkube_auth::Attributes) -> (bool, String) + '_ {
    move |u, a| if u.in_group(rkube_auth::user::MASTERS_GROUP) { (true, String::new()) } else { app.rbac.decide(u, a) }
}

/// Answers a create on a review resource; `None` if `def` is not one.
pub(crate) async fn create(
    app: &AppState,
    user: &User,
    def: &ResourceDef,
    ns: Option<&str>,
    body: &Value,
) -> Option<Result<Value, ApiError>> {
    let now = SystemTime::now();
    let kind = match (def.group.as_str(), def.resource.as_str()) {
        ("authentication.k8s.io", "selfsubjectreviews") => return Some(Ok(rkube_auth::self_subject_review(user, now))),
        ("authentication.k8s.io", "tokenreviews") => return Some(token_review(app, body, now)),
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            return Some((|| {
                let ns = rkube_auth::rules_review_namespace(body).map_err(|e| e.to_api_error())?;
                // Upstream's superuser authorizer lists no rules: only RBAC's view of the user is reported.
                let rules = app.rbac.rules_for(user, &ns);
                Ok(rkube_auth::rules_review(&rules))
            })());
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews") => rkube_auth::AccessReviewKind::SelfSubjectAccessReview,
        ("authorization.k8s.io", "subjectaccessreviews") => rkube_auth::AccessReviewKind::SubjectAccessReview,
        ("authorization.k8s.io", "localsubjectaccessreviews") => {
            rkube_auth::AccessReviewKind::LocalSubjectAccessReview { namespace: ns.unwrap_or_default() }
        }
        _ => return None,
    };
    Some(rkube_auth::access_review(body, user, kind, authorizer(app)).map_err(|e| e.to_api_error()))
}

fn token_review(app: &AppState, body: &Value, now: SystemTime) -> Result<Value, ApiError> {
    let spec = rkube_auth::token_review_spec(body).map_err(|e| e.to_api_error())?;
    let mut outcome = rkube_auth::TokenReviewOutcome::from_service_account(app.verifier.authenticate(
        &spec.token,
        &spec.audiences,
        now,
        |l| authn::lookup(app, l),
    ));
    if matches!(outcome, rkube_auth::TokenReviewOutcome::Rejected(None))
        && let Some(user) = authn::bootstrap_user(app, &spec.token, now)
    {
        let audiences = rkube_auth::user::audience_agnostic(app.verifier.api_audiences(), &spec.audiences);
        if !audiences.is_empty() {
            outcome = rkube_auth::TokenReviewOutcome::Authenticated(rkube_auth::Authenticated { user, audiences });
        }
    }
    Ok(rkube_auth::token_review(body, &outcome))
}

/// `POST .../serviceaccounts/<name>/token`: a bound service-account token. Returns the TokenRequest and a warning.
pub(crate) async fn token_request(
    app: &AppState,
    ns: &str,
    sa_name: &str,
    body: &Value,
) -> Result<(Value, Option<String>), ApiError> {
    let registry = &app.registry;
    let sa = registry.get(&ResourceDef::builtin_named("", "serviceaccounts"), Some(ns), sa_name).await?;
    let mut body = body.clone();
    if body.get("spec").is_none() {
        body["spec"] = serde_json::json!({});
    }
    let bound_ref = rkube_auth::bound_object_ref(&body["spec"]).map_err(|e| e.to_api_error())?;
    let mut bound = None;
    let mut node = None;
    if let Some(r) = bound_ref {
        let resource = r.kind.resource();
        let namespaced = resource != "nodes";
        let def = ResourceDef::builtin_named("", resource);
        let obj = registry.get(&def, if namespaced { Some(ns) } else { None }, &r.name).await?;
        if resource == "pods"
            && let Some(n) = obj.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty())
        {
            node = registry.get(&ResourceDef::builtin_named("", "nodes"), None, n).await.ok();
        }
        bound = Some(obj);
    }
    app.tokens.token_request(&body, &sa, bound.as_ref(), node.as_ref(), SystemTime::now()).map_err(|e| e.to_api_error())
}
