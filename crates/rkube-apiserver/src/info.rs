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
pub(crate) async fn answer(app: &Arc<AppState>, path: &str) -> Result<Response, ApiError> {
    match path {
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
        _ => Err(ApiError::no_such_resource()),
    }
}
