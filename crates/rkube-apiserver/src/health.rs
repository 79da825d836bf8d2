//! `/healthz`, `/livez`, `/readyz` with upstream's `?verbose` output and per-check paths.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};

use crate::query::Query;
use crate::state::AppState;

/// Runs the checks and answers `ok` or the failing checks, as upstream's healthz handlers.
pub(crate) async fn answer(app: &Arc<AppState>, path: &str, query: &Query) -> Response {
    let endpoint = path.trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
    let only = path.trim_start_matches('/').split_once('/').map(|(_, c)| c.to_owned());
    let store = app.registry.store().clone();
    let etcd_ok = matches!(tokio::time::timeout(Duration::from_secs(2), store.current_revision()).await, Ok(Ok(_)));
    let mut checks: Vec<(&str, bool)> = vec![("ping", true), ("log", true), ("etcd", etcd_ok)];
    if endpoint == "readyz" {
        checks.push(("informer-sync", app.registry.cache().revision() > 0 || etcd_ok));
        checks.push(("poststarthook/rkube-bootstrap", app.ready.load(Ordering::Relaxed)));
    }
    if let Some(one) = only {
        return match checks.iter().find(|(n, _)| *n == one) {
            Some((_, true)) => text(StatusCode::OK, "ok".to_owned()),
            Some((n, false)) => {
                text(StatusCode::INTERNAL_SERVER_ERROR, format!("internal server error: {n} check failed\n"))
            }
            None => text(StatusCode::NOT_FOUND, "404 page not found\n".to_owned()),
        };
    }
    let healthy = checks.iter().all(|(_, ok)| *ok);
    let verbose = query.get("verbose").is_some() || !healthy;
    let mut body = String::new();
    if verbose {
        for (n, ok) in &checks {
            body.push_str(&format!(
                "[{}]{n} {}\n",
                if *ok { "+" } else { "-" },
                if *ok { "ok" } else { "failed: reason withheld" }
            ));
        }
        body.push_str(&format!("{endpoint} check {}\n", if healthy { "passed" } else { "failed" }));
    } else {
        body.push_str("ok");
    }
    text(if healthy { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR }, body)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}
