//! `GET /containerLogs/{ns}/{pod}/{container}`: picks the container instance (current, or `previous`), finds
//! its log file through CRI `ContainerStatus.log_path`, and streams it as `text/plain`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State as AxState};
use axum::response::Response;
use rkube_cri::api::{self, ContainerState};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::failure::Failure;
use crate::logs::{self, Alive, LogOptions};
use crate::lookup;
use crate::query::Query;
use crate::state::State;

pub(crate) async fn handle(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, name)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    let q = Query::parse(req.uri().query());
    let opts = LogOptions::from_query(&q, jiff::Timestamp::now()).map_err(Failure::bad_request)?;
    let sandbox = lookup::sandbox(&st, &ns, &pod).await?;
    let all = lookup::instances(&st, &sandbox, &name).await?;
    let target = if opts.previous {
        lookup::previous(&all).ok_or_else(|| {
            Failure::bad_request(format!("previous terminated container \"{name}\" in pod \"{pod}\" not found"))
        })?
    } else {
        lookup::current(&all).ok_or_else(|| {
            Failure::bad_request(format!(
                "container \"{name}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            ))
        })?
    };
    let id = target.id.clone();
    let status = container_status(&st, &id).await?;
    if status.log_path.is_empty() {
        return Err(Failure::internal(format!("container \"{name}\" in pod \"{pod}\" has no log path")));
    }
    let path = {
        let p = PathBuf::from(&status.log_path);
        if p.is_absolute() { p } else { st.pod_logs_dir.join(p) }
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Failure::internal(format!("failed to open log file {:?}: {e}", path.display())))?;

    let alive_state = st.clone();
    let alive: Alive = Box::new(move || {
        let st = alive_state.clone();
        let id = id.clone();
        Box::pin(async move {
            // A runtime that does not answer is no reason to end the stream; a gone container is.
            match container_status(&st, &id).await {
                Ok(s) => {
                    s.state == ContainerState::ContainerRunning as i32
                        || s.state == ContainerState::ContainerCreated as i32
                }
                Err(f) => f.code != http::StatusCode::NOT_FOUND,
            }
        })
    });
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let stop = st.stop.clone();
    tokio::spawn(async move {
        if let Err(e) = logs::stream(path.clone(), file, opts, alive, tx, stop).await {
            tracing::debug!(path = %path.display(), error = %e, "reading a container log failed");
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, std::io::Error>));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    Ok(resp)
}

async fn container_status(st: &State, id: &str) -> Result<api::ContainerStatus, Failure> {
    let mut client = st.runtime.runtime.clone();
    let req = api::ContainerStatusRequest { container_id: id.to_owned(), verbose: false };
    st.metrics
        .runtime_op("container_status", client.container_status(req))
        .await
        .map_err(|e| Failure::runtime("container status", &e))?
        .into_inner()
        .status
        .ok_or_else(|| Failure::internal(format!("the runtime returned no status for container {id}")))
}
