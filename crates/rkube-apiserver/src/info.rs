//! Non-resource endpoints: `/version`, `/metrics`, `/openapi/v2`, `/openapi/v3`.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use rkube_apimachinery::ApiError;
use serde_json::json;

use crate::codec::Output;
use crate::handler::respond;
use crate::state::AppState;

/// The Kubernetes version rkube's API corresponds to.
pub(crate) const KUBE_MAJOR: &str = "1";
/// Minor version.
pub(crate) const KUBE_MINOR: &str = "33";

/// Answers a non-resource path.
pub(crate) async fn answer(app: &Arc<AppState>, path: &str, headers: &http::HeaderMap) -> Result<Response, ApiError> {
    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match path {
        // client-go asks for v2 only as gnostic protobuf, which rkube does not produce yet: answering JSON
        // would be a parse error in kubectl, while 404 makes it carry on without a v2 schema (it uses v3).
        "/openapi/v2" if accept.contains("protobuf") && !accept.contains("json") && !accept.contains("*/*") => {
            Err(ApiError::no_such_resource())
        }
        "/version" | "/version/" => Ok(respond(
            StatusCode::OK,
            &json!({
                "major": KUBE_MAJOR,
                "minor": KUBE_MINOR,
                "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0+rkube-{}", env!("CARGO_PKG_VERSION")),
                "gitCommit": "",
                "gitTreeState": "clean",
                "buildDate": "",
                "goVersion": "rkube (Rust)",
                "compiler": "rustc",
                "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
            }),
            Output::Json,
        )),
        "/metrics" => {
            let mut r = Response::new(Body::from(app.metrics.render()));
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            Ok(r)
        }
        "/openapi/v2" => Ok(published(&app.registry.openapi().v2())),
        "/openapi/v3" | "/openapi/v3/" => Ok(respond(StatusCode::OK, &app.registry.openapi().v3_index(), Output::Json)),
        p if p.starts_with("/openapi/v3/") => {
            let doc = app.registry.openapi().v3_group_version(&p["/openapi/v3/".len()..]);
            doc.map(|d| published(&d)).ok_or_else(ApiError::no_such_resource)
        }
        _ => Err(ApiError::no_such_resource()),
    }
}

/// A published OpenAPI document with its ETag; the hash in the URL changes with the content, so clients cache it.
fn published(doc: &rkube_openapi::Published) -> Response {
    let mut r = Response::new(Body::from(doc.bytes().to_vec()));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(etag) = HeaderValue::from_str(&doc.etag()) {
        r.headers_mut().insert(http::header::ETAG, etag);
    }
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
    r
}
