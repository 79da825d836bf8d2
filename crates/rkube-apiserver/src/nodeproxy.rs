//! `pods/log`, `exec`, `attach` and `portforward`: the API server finds the pod's node and forwards the
//! request to that node's agent (the kubelet API on `status.daemonEndpoints.kubeletEndpoint`), over TLS with
//! the API server's kubelet-client certificate, as upstream does. Logs stream back; exec, attach and
//! port-forward are connection upgrades (SPDY or WebSocket) relayed byte for byte in both directions.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::resource::ResourceDef;
use crate::state::AppState;

/// Where a node's agent listens: the first InternalIP (else ExternalIP, else Hostname) and the kubelet port.
fn agent_address(node: &Value) -> Option<(String, u16)> {
    let addrs = node.pointer("/status/addresses").and_then(Value::as_array)?;
    let pick = |t: &str| {
        addrs
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
            .and_then(|a| a.get("address")?.as_str().map(str::to_owned))
    };
    let host = pick("InternalIP").or_else(|| pick("ExternalIP")).or_else(|| pick("Hostname"))?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10250);
    Some((host, port))
}

/// The container a request is about: the `container` parameter, or the pod's only container.
fn container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let init: Vec<String> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.iter().chain(init.iter()).any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// Forwards one of the streaming subresources to the pod's node agent.
pub(crate) async fn forward(
    app: &Arc<AppState>,
    ns: &str,
    pod_name: &str,
    sub: &str,
    query: &crate::query::Query,
    mut req: Request,
) -> Result<Response, ApiError> {
    let pods = ResourceDef::builtin_named("", "pods");
    let pod = app.registry.get(&pods, Some(ns), pod_name).await?;
    let Some(node_name) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return Err(ApiError::bad_request(format!("pod {pod_name} does not have a host assigned")));
    };
    let node = app.registry.get(&ResourceDef::builtin_named("", "nodes"), None, node_name).await.map_err(|e| {
        if e.code == 404 {
            ApiError::bad_request(format!("pod {pod_name} is assigned to node {node_name}, which does not exist"))
        } else {
            e
        }
    })?;
    let (host, port) = agent_address(&node)
        .ok_or_else(|| ApiError::bad_request(format!("node {node_name} reports no address for its agent")))?;
    let raw_query = req.uri().query().unwrap_or_default().to_owned();
    let path = match sub {
        "log" => format!("/containerLogs/{ns}/{pod_name}/{}", container(&pod, pod_name, query.get("container"))?),
        "exec" => format!("/exec/{ns}/{pod_name}/{}", container(&pod, pod_name, query.get("container"))?),
        "attach" => format!("/attach/{ns}/{pod_name}/{}", container(&pod, pod_name, query.get("container"))?),
        "portforward" => format!("/portForward/{ns}/{pod_name}"),
        other => {
            return Err(ApiError::no_such_resource().with_cause(
                "NotFound",
                &format!("pods/{other} is not served"),
                "",
            ));
        }
    };
    let uri = if raw_query.is_empty() { path } else { format!("{path}?{raw_query}") };

    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| {
        ApiError::unavailable(format!("cannot reach the agent of node {node_name} at {host}:{port}: {e}"))
    })?;
    let server_name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|e| ApiError::internal(format!("node address {host}: {e}")))?;
    let tls =
        tokio_rustls::TlsConnector::from(app.kubelet_tls.clone()).connect(server_name, tcp).await.map_err(|e| {
            ApiError::unavailable(format!("TLS to the agent of node {node_name} at {host}:{port} failed: {e}"))
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| ApiError::unavailable(format!("agent of node {node_name}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "agent connection ended");
        }
    });

    let upgrade = req.headers().contains_key(http::header::UPGRADE);
    let client_upgrade = if upgrade { Some(hyper::upgrade::on(&mut req)) } else { None };
    let mut out = http::Request::builder().method(req.method().clone()).uri(uri);
    for (k, v) in req.headers() {
        // Credentials meant for the API server stay here; the agent trusts the API server's certificate.
        if k == http::header::AUTHORIZATION || k.as_str().starts_with("impersonate-") {
            continue;
        }
        out = out.header(k, v);
    }
    out = out.header(http::header::HOST, format!("{host}:{port}"));
    let body = if upgrade { Body::empty() } else { req.into_body() };
    let outgoing = out.body(body).map_err(|e| ApiError::internal(format!("building the agent request: {e}")))?;
    let mut resp = sender
        .send_request(outgoing)
        .await
        .map_err(|e| ApiError::unavailable(format!("agent of node {node_name}: {e}")))?;

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let agent_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match (client_upgrade.await, agent_upgrade.await) {
                (Ok(c), Ok(a)) => {
                    let (mut c, mut a) = (TokioIo::new(c), TokioIo::new(a));
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut a).await;
                }
                (c, a) => tracing::debug!(client = c.is_ok(), agent = a.is_ok(), "stream upgrade failed"),
            }
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agent_address_prefers_internal_ip() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}});
        assert_eq!(agent_address(&node), Some(("10.0.0.5".to_owned(), 11250)));
    }

    #[test]
    fn container_choice() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(container(&pod, "p", Some("b")).expect("b"), "b");
        let e = container(&pod, "p", None).expect_err("ambiguous");
        assert_eq!(e.message, "a container name must be specified for pod p, choose one of: [a b]");
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container(&one, "p", None).expect("only"), "only");
    }
}
