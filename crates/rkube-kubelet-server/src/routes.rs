//! The agent API's routes (upstream's kubelet paths) and the request metrics around them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::state::State;
use crate::{containerlogs, stats, streams};

/// Every route of the agent API.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/metrics/resource", get(stats::resource_metrics))
        .route("/stats/summary", get(stats::summary))
        .route("/containerLogs/{ns}/{pod}/{container}", get(containerlogs::handle))
        .route("/exec/{ns}/{pod}/{container}", any(streams::exec))
        .route("/exec/{ns}/{pod}/{uid}/{container}", any(streams::exec_uid))
        .route("/attach/{ns}/{pod}/{container}", any(streams::attach))
        .route("/attach/{ns}/{pod}/{uid}/{container}", any(streams::attach_uid))
        .route("/portForward/{ns}/{pod}", any(streams::port_forward))
        .route("/portForward/{ns}/{pod}/{uid}", any(streams::port_forward_uid))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

async fn record(AxState(st): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    let started = st.metrics.request_started(req.method().as_str(), req.uri().path());
    let resp = next.run(req).await;
    st.metrics.request_done(started);
    resp
}

/// 200 `ok` while the runtime answers (upstream's kubelet checks its own loops; ours depend on the runtime).
async fn healthz(AxState(st): AxState<Arc<State>>) -> Response {
    let mut client = st.runtime.runtime.clone();
    let call = st.metrics.runtime_op("version", client.version(rkube_cri::api::VersionRequest::default()));
    match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
        Ok(Ok(_)) => "ok".into_response(),
        Ok(Err(e)) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("[-]runtime failed: {}\nhealthz check failed\n", e.message()),
        )
            .into_response(),
        Err(_) => {
            (http::StatusCode::INTERNAL_SERVER_ERROR, "[-]runtime failed: no answer in 5s\nhealthz check failed\n")
                .into_response()
        }
    }
}

async fn metrics(AxState(st): AxState<Arc<State>>) -> Response {
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.metrics.render()).into_response()
}
