//! Authentication: who is asking. Client certificates verified by the TLS layer against the cluster CA
//! (CN = user, O = groups), then bearer tokens: service-account tokens (signature, audience, expiry, and the
//! live ServiceAccount/Pod/Secret they are bound to) and bootstrap tokens. Anonymous requests are refused, except for the `cluster-info` ConfigMap joining nodes read.

use std::time::SystemTime;

use rkube_apimachinery::ApiError;
use rkube_pki::ClientIdentity;
use serde_json::Value;

use crate::resource::ResourceDef;
use crate::state::AppState;

/// An authenticated user (name, uid, groups, extra), as rkube-auth defines it.
pub type User = rkube_auth::UserInfo;

/// The one path anonymous requests may ask for (and RBAC must still allow): the CA and server for joining nodes.
pub(crate) const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Upstream's anonymous user: `system:anonymous` in `system:unauthenticated`.
pub(crate) fn anonymous() -> User {
    let mut u = User::new("system:anonymous".to_owned());
    u.groups = vec!["system:unauthenticated".to_owned()];
    u
}

/// What the TLS layer learned about the peer, attached to every request on the connection.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The identity from a client certificate that verified against the CA.
    pub certificate: Option<ClientIdentity>,
}

/// A user from a verified client certificate.
pub fn from_certificate(id: &ClientIdentity) -> User {
    let mut u = User::new(id.username.clone());
    u.groups = id.groups.clone();
    u.authenticated()
}

/// Reads a live object for token checks from the watch cache.
pub(crate) fn lookup(app: &AppState, l: &rkube_auth::Lookup) -> Option<Value> {
    let def = ResourceDef::builtin_named("", l.kind.resource());
    let ns = if l.namespace.is_empty() { None } else { Some(l.namespace.as_str()) };
    app.registry.cache().get(&app.registry.key(&def, ns, &l.name)).map(|o| o.value.clone())
}

/// A bootstrap token's user, if `token` is one and its Secret says it is valid.
pub(crate) fn bootstrap_user(app: &AppState, token: &str, now: SystemTime) -> Option<User> {
    let bt = rkube_auth::BootstrapToken::parse(token).ok()?;
    let secrets = ResourceDef::builtin_named("", "secrets");
    let key = app.registry.key(&secrets, Some(rkube_auth::bootstrap::SECRET_NAMESPACE), &bt.secret_name());
    let secret = app.registry.cache().get(&key).map(|o| o.value.clone());
    bt.authenticate(secret.as_ref(), now).ok()
}

/// Authenticates a request: `Ok(None)` means anonymous, `Err` a credential that was presented and is not valid.
pub(crate) fn authenticate(app: &AppState, peer: &Peer, headers: &http::HeaderMap) -> Result<Option<User>, ApiError> {
    if let Some(id) = &peer.certificate {
        return Ok(Some(from_certificate(id)));
    }
    let Some(header) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(token) = rkube_auth::bearer_token(header) else { return Err(ApiError::unauthorized()) };
    let now = SystemTime::now();
    match app.verifier.authenticate(token, &[], now, |l| lookup(app, l)) {
        Ok(a) => Ok(Some(a.user)),
        Err(e) if e.is_not_ours() => bootstrap_user(app, token, now).map(Some).ok_or_else(ApiError::unauthorized),
        Err(e) => {
            tracing::debug!(error = %e, "service-account token refused");
            Err(ApiError::unauthorized())
        }
    }
}

/// Applies `Impersonate-User` / `Impersonate-Group` / `Impersonate-Uid` headers (kubectl `--as`, `--as-group`),
/// after checking that `user` may impersonate each of them, as upstream's impersonation filter does.
pub(crate) fn impersonate(app: &AppState, user: User, headers: &http::HeaderMap) -> Result<User, ApiError> {
    let Some(target) = headers.get("impersonate-user").and_then(|v| v.to_str().ok()) else {
        if headers.contains_key("impersonate-group") {
            return Err(ApiError::internal("requested [{Kind=Group}] without impersonating a user"));
        }
        return Ok(user);
    };
    let groups: Vec<String> =
        headers.get_all("impersonate-group").iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
    let may = |resource: &str, name: &str, namespace: &str| {
        let attrs = crate::authz::Attributes {
            verb: "impersonate".into(),
            group: String::new(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        };
        matches!(crate::authz::authorize(&app.rbac, &user, &attrs), crate::authz::Decision::Allow)
    };
    let allowed_user = match rkube_auth::user::split_service_account_username(target) {
        Some((ns, name)) => may("serviceaccounts", name, ns),
        None => may("users", target, ""),
    };
    if !allowed_user {
        return Err(ApiError::forbidden_because(
            "",
            "users",
            target,
            &format!(
                "User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                user.name
            ),
        ));
    }
    for g in &groups {
        if !may("groups", g, "") {
            return Err(ApiError::forbidden_because(
                "",
                "groups",
                g,
                &format!(
                    "User \"{}\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope",
                    user.name
                ),
            ));
        }
    }
    let mut out = User::new(target.to_owned());
    out.groups = groups;
    if let Some((ns, _)) = rkube_auth::user::split_service_account_username(target) {
        for g in rkube_auth::user::service_account_groups(ns) {
            if !out.groups.contains(&g) {
                out.groups.push(g);
            }
        }
    }
    Ok(out.authenticated())
}
