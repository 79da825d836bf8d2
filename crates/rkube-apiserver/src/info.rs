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
        "/openapi/v2" => match rkube_openapi::v2_format(Some(accept).filter(|a| !a.is_empty())) {
            Some(rkube_openapi::V2Format::Protobuf) => {
                let doc = app.registry.openapi().v2_protobuf();
                let mut r = Response::new(Body::from(doc.bytes().to_vec()));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(rkube_openapi::V2Protobuf::CONTENT_TYPE),
                );
                if let Ok(etag) = HeaderValue::from_str(&doc.etag()) {
                    r.headers_mut().insert(http::header::ETAG, etag);
                }
                r.headers_mut().insert(http::header::VARY, HeaderValue::from_static("Accept"));
                Ok(r)
            }
            Some(rkube_openapi::V2Format::Json) => {
                let mut r = published(&app.registry.openapi().v2(), false);
                r.headers_mut().insert(http::header::VARY, HeaderValue::from_static("Accept"));
                Ok(r)
            }
            None => Err(ApiError::not_acceptable(accept)),
        },
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
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        "/openapi/v3" | "/openapi/v3/" => Ok(respond(StatusCode::OK, &app.registry.openapi().v3_index(), Output::Json)),
        p if p.starts_with("/openapi/v3/") => {
            let doc = app.registry.openapi().v3_group_version(&p["/openapi/v3/".len()..]);
            doc.map(|d| published(&d, true)).ok_or_else(ApiError::no_such_resource)
        }
        _ => Err(ApiError::no_such_resource()),
    }
}

/// A published OpenAPI document with its ETag; the hash in the URL changes with the content, so clients cache it.
/// `immutable` only for URLs that carry the document's hash (v3), never for `/openapi/v2`, which changes with CRDs.
fn published(doc: &rkube_openapi::Published, immutable: bool) -> Response {
    let mut r = Response::new(Body::from(doc.bytes().to_vec()));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(etag) = HeaderValue::from_str(&doc.etag()) {
        r.headers_mut().insert(http::header::ETAG, etag);
    }
    if immutable {
        r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
    }
    r
}
