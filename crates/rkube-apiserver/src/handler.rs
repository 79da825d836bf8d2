//! The request pipeline: authenticate, parse the path, authorize, then hand the request to discovery,
//! the health and info endpoints, or the resource handlers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::authn::{self, Peer, User};
use crate::authz::{self, Attributes, Decision};
use crate::codec::{self, Output};
use crate::request_info::{self, Target};
use crate::state::AppState;

/// Builds a response from a JSON value, in the client's format.
pub(crate) fn respond(status: StatusCode, value: &Value, out: Output) -> Response {
    let (body, ct) = codec::encode(value, out);
    respond_encoded(status, Body::from(body), ct)
}

/// An answer already encoded as `content_type`.
pub(crate) fn respond_encoded(status: StatusCode, body: Body, content_type: &'static str) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The `Status` answer for an error.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, &e.to_status(), Output::Json)
}

/// The one handler behind every path.
pub(crate) async fn dispatch(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req.extensions().get::<Peer>().cloned().unwrap_or_default();
    let authenticated = authn::authenticate(&app, &peer, req.headers())
        .and_then(|u| u.map(|u| authn::impersonate(&app, u, req.headers())).transpose());
    let (user, response) = match authenticated {
        Ok(user) => {
            let r = match handle(&app, user.as_ref(), req).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            };
            (user, r)
        }
        Err(e) => (None, error_response(&e)),
    };
    app.metrics.observe(&method, &path, response.status().as_u16(), started.elapsed());
    tracing::debug!(%method, %path, status = response.status().as_u16(), user = user.as_ref().map(|u| u.name.as_str()).unwrap_or("-"), "request");
    response
}

async fn handle(app: &Arc<AppState>, user: Option<&User>, req: Request) -> Result<Response, ApiError> {
    let path = req.uri().path().to_owned();
    let query = crate::query::Query::parse(req.uri().query());
    // Health endpoints answer without credentials, so probes and load balancers need none
    // (upstream's anonymous access limited to these endpoints).
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
    {
        return Ok(crate::health::answer(app, &path, &query).await);
    }
    // Anonymous requests reach authorization (as `system:anonymous` in `system:unauthenticated`) only for the
    // paths upstream's anonymous-endpoint conditions name for joining: the `cluster-info` ConfigMap that nodes
    // read before they trust the CA (kubeadm's discovery). Everything else needs credentials.
    let anonymous;
    let user = match user {
        Some(u) => u,
        None if req.method() == Method::GET && path == authn::CLUSTER_INFO_PATH => {
            anonymous = authn::anonymous();
            &anonymous
        }
        None => return Err(ApiError::unauthorized()),
    };
    let target = request_info::parse(req.method(), &path, query.flag("watch"));
    let out = codec::output(req.headers());
    match target {
        Target::NonResource(p) => {
            let verb = match *req.method() {
                Method::GET | Method::HEAD => "get",
                Method::POST => "post",
                Method::PUT => "put",
                Method::DELETE => "delete",
                _ => "unknown",
            };
            check(app, user, &Attributes { verb: verb.into(), path: Some(p.clone()), ..Default::default() }, || {
                ApiError::forbidden_because("", "", "", &format!("User \"{}\" cannot {verb} path \"{p}\"", user.name))
            })?;
            crate::info::answer(app, &p, req.headers()).await
        }
        Target::Discovery { group: None, version: None, legacy }
            if crate::discovery::aggregated_version(req.headers()).is_some() =>
        {
            let ver = crate::discovery::aggregated_version(req.headers()).unwrap_or("v2");
            let doc = crate::discovery::aggregated(&app.catalog, legacy, ver);
            let mut r = respond(StatusCode::OK, &doc, Output::Json);
            let ct = if ver == "v2" {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            } else {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            };
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
            r.headers_mut().insert(http::header::VARY, HeaderValue::from_static("Accept"));
            Ok(r)
        }
        Target::Discovery { group, version, legacy } => {
            let v =
                crate::discovery::answer(&app.catalog, group.as_deref(), version.as_deref(), legacy, &app.advertise)?;
            Ok(respond(StatusCode::OK, &v, out))
        }
        Target::Resource(info) => {
            let Some(def) = app.catalog.find(&info.group, &info.version, &info.resource) else {
                return Err(ApiError::no_such_resource());
            };
            let attrs = Attributes {
                verb: info.verb.to_owned(),
                group: info.group.clone(),
                resource: info.resource.clone(),
                subresource: info.subresource.clone().unwrap_or_default(),
                namespace: if def.namespaced { info.namespace.clone().unwrap_or_default() } else { String::new() },
                name: info.name.clone().unwrap_or_default(),
                path: None,
            };
            check(app, user, &attrs, || {
                ApiError::forbidden(
                    &user.name,
                    info.verb,
                    &info.group,
                    &info.resource,
                    &attrs.subresource,
                    &attrs.namespace,
                    &attrs.name,
                )
            })?;
            crate::resources::handle(app, user, &def, &info, &query, out, req).await
        }
    }
}

fn check(app: &AppState, user: &User, attrs: &Attributes, denied: impl FnOnce() -> ApiError) -> Result<(), ApiError> {
    match authz::authorize(&app.rbac, user, attrs) {
        Decision::Allow => Ok(()),
        // Upstream appends the authorizer's reason (e.g. a bound role that does not exist) to the message.
        Decision::Deny(reason) => {
            let mut e = denied();
            if !reason.is_empty() {
                e.message = format!("{}: {reason}", e.message);
            }
            Err(e)
        }
    }
}

/// Reads the whole request body, refusing more than upstream's 3 MiB.
pub(crate) async fn read_body(req: Request) -> Result<(http::HeaderMap, bytes::Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, codec::MAX_BODY).await.map_err(|_| ApiError::too_large(codec::MAX_BODY))?;
    Ok((parts.headers, bytes))
}

/// A JSON object with `kind: Status`, `status: Success`.
pub(crate) fn success_status(def: &crate::resource::ResourceDef, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": def.resource, "uid": uid });
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}
