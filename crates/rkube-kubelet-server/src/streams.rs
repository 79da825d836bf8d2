//! `exec`, `attach` and `portForward`: the options from the query (upstream's names), the CRI call that
//! prepares a session on the runtime's streaming server, and the relay of the client's upgrade to it.

use std::sync::Arc;

use axum::extract::{Path, Request, State as AxState};
use axum::response::Response;
use rkube_cri::api::{self, ContainerState};

use crate::failure::Failure;
use crate::lookup;
use crate::query::Query;
use crate::relay::relay;
use crate::state::State;

/// The stream flags of exec and attach (a TTY merges stderr into stdout, so stderr is off with one).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamFlags {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
}

impl StreamFlags {
    pub(crate) fn from_query(q: &Query) -> Result<StreamFlags, Failure> {
        let flag = |k: &str| q.flag(k).map_err(Failure::bad_request);
        let tty = flag("tty")?;
        let f = StreamFlags { stdin: flag("stdin")?, stdout: flag("stdout")?, stderr: flag("stderr")? && !tty, tty };
        if !f.stdin && !f.stdout && !f.stderr {
            return Err(Failure::bad_request("you must specify at least 1 of stdin, stdout, stderr"));
        }
        Ok(f)
    }
}

/// The running container `name` of pod `ns/pod`.
async fn running(st: &State, ns: &str, pod: &str, name: &str) -> Result<String, Failure> {
    let (_, c) = lookup::container(st, ns, pod, name).await?;
    if c.state != ContainerState::ContainerRunning as i32 {
        return Err(Failure::bad_request(format!("container \"{name}\" in pod \"{pod}\" is not running")));
    }
    Ok(c.id)
}

pub(crate) async fn exec(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, name)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    exec_in(st, ns, pod, name, req).await
}

pub(crate) async fn exec_uid(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, _uid, name)): Path<(String, String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    exec_in(st, ns, pod, name, req).await
}

async fn exec_in(st: Arc<State>, ns: String, pod: String, name: String, req: Request) -> Result<Response, Failure> {
    let q = Query::parse(req.uri().query());
    let cmd = q.all("command");
    if cmd.is_empty() {
        return Err(Failure::bad_request("you must specify at least one command for the container"));
    }
    let flags = StreamFlags::from_query(&q)?;
    let container_id = running(&st, &ns, &pod, &name).await?;
    let call = api::ExecRequest {
        container_id,
        cmd,
        tty: flags.tty,
        stdin: flags.stdin,
        stdout: flags.stdout,
        stderr: flags.stderr,
    };
    let mut client = st.runtime.runtime.clone();
    let url = st
        .metrics
        .runtime_op("exec", client.exec(call))
        .await
        .map_err(|e| Failure::runtime("preparing exec", &e))?
        .into_inner()
        .url;
    relay(&url, req, st.stop.clone()).await
}

pub(crate) async fn attach(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, name)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    attach_to(st, ns, pod, name, req).await
}

pub(crate) async fn attach_uid(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, _uid, name)): Path<(String, String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    attach_to(st, ns, pod, name, req).await
}

async fn attach_to(st: Arc<State>, ns: String, pod: String, name: String, req: Request) -> Result<Response, Failure> {
    let flags = StreamFlags::from_query(&Query::parse(req.uri().query()))?;
    let container_id = running(&st, &ns, &pod, &name).await?;
    let call = api::AttachRequest {
        container_id,
        stdin: flags.stdin,
        tty: flags.tty,
        stdout: flags.stdout,
        stderr: flags.stderr,
    };
    let mut client = st.runtime.runtime.clone();
    let url = st
        .metrics
        .runtime_op("attach", client.attach(call))
        .await
        .map_err(|e| Failure::runtime("preparing attach", &e))?
        .into_inner()
        .url;
    relay(&url, req, st.stop.clone()).await
}

pub(crate) async fn port_forward(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    forward_to(st, ns, pod, req).await
}

pub(crate) async fn port_forward_uid(
    AxState(st): AxState<Arc<State>>,
    Path((ns, pod, _uid)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Failure> {
    forward_to(st, ns, pod, req).await
}

/// The `port` parameters (WebSocket clients name them in the query; SPDY clients per stream, in headers).
pub(crate) fn ports(q: &Query) -> Result<Vec<i32>, Failure> {
    q.all("port")
        .iter()
        .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(i32::from(n)),
            _ => Err(Failure::bad_request(format!("unable to parse {p:?} as a port"))),
        })
        .collect()
}

async fn forward_to(st: Arc<State>, ns: String, pod: String, req: Request) -> Result<Response, Failure> {
    let port = ports(&Query::parse(req.uri().query()))?;
    let sandbox = lookup::sandbox(&st, &ns, &pod).await?;
    if sandbox.state != api::PodSandboxState::SandboxReady as i32 {
        return Err(Failure::bad_request(format!("pod \"{pod}\" is not running")));
    }
    let call = api::PortForwardRequest { pod_sandbox_id: sandbox.id, port };
    let mut client = st.runtime.runtime.clone();
    let url = st
        .metrics
        .runtime_op("port_forward", client.port_forward(call))
        .await
        .map_err(|e| Failure::runtime("preparing port forwarding", &e))?
        .into_inner()
        .url;
    relay(&url, req, st.stop.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_ports() {
        let f =
            StreamFlags::from_query(&Query::parse(Some("stdin=true&stdout=true&stderr=true&tty=true"))).expect("ok");
        assert_eq!(f, StreamFlags { stdin: true, stdout: true, stderr: false, tty: true });
        assert!(StreamFlags::from_query(&Query::parse(Some("tty=1"))).is_err());
        assert_eq!(ports(&Query::parse(Some("port=80&port=8080,9090"))).expect("ports"), [80, 8080, 9090]);
        assert!(ports(&Query::parse(Some("port=0"))).is_err());
        assert!(ports(&Query::parse(Some("port=http"))).is_err());
        assert!(ports(&Query::parse(None)).expect("none").is_empty());
    }
}
