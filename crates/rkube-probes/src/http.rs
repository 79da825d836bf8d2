//! httpGet probes and hooks: one GET over HTTP/1.1 (HTTPS without certificate checks, as the kubelet's probe
//! transport), same-host redirects followed (at most 10), at most 10 KiB of body read, and Go's
//! `net/http` error texts (`Get "http://10.0.0.5:80/": dial tcp ...`) in the messages.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::outcome::{Errored, Outcome};
use crate::{gostr, port, tcp, tls};

/// Upstream reads at most this much of a probe's response body.
const MAX_BODY: usize = 10 * 1024;
/// The Kubernetes minor version the kubelet announces in its User-Agent.
pub(crate) const VERSION: &str = "1.33";

/// One GET request, built as upstream's `NewRequestForHTTPGetAction`.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    scheme: String,
    host: String,
    port: u16,
    /// Path and query as written in the action (may be empty).
    path: String,
    /// The `Host` header when the action sets one (Go sends it as `req.Host`).
    host_header: Option<String>,
    headers: Vec<(String, String)>,
}

/// A response: its status and the start of its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The request for `action` of `container`; `pod_ip` is the host unless the action names one. `purpose` is
    /// `probe` or `lifecycle` (the User-Agent `kube-probe/1.33`, `kube-lifecycle/1.33`).
    pub(crate) fn new(
        action: &HTTPGetAction,
        container: &Container,
        pod_ip: &str,
        purpose: &str,
    ) -> Result<Self, String> {
        let scheme = action.scheme.as_deref().unwrap_or("").to_ascii_lowercase();
        let scheme = if scheme.is_empty() { "http".to_owned() } else { scheme };
        let host = action.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_owned());
        let port = port::resolve(&action.port, container)?;
        let mut headers: Vec<(String, String)> =
            action.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
        let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !has(&headers, "User-Agent") {
            headers.push(("User-Agent".to_owned(), format!("kube-{purpose}/{VERSION}")));
        }
        if !has(&headers, "Accept") {
            headers.push(("Accept".to_owned(), "*/*".to_owned()));
        } else if headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Accept")).is_some_and(|(_, v)| v.is_empty()) {
            // An Accept header set to nothing removes it, as upstream.
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Accept"));
        }
        let host_header = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Host")).map(|(_, v)| v.clone());
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Host"));
        Ok(Request { scheme, host, port, path: action.path.clone().unwrap_or_default(), host_header, headers })
    }

    /// The URL as Go prints it (`http://10.0.0.5:8080/healthz`).
    pub(crate) fn url(&self) -> String {
        let path = if self.path.is_empty() || self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("/{}", self.path)
        };
        format!("{}://{}{}", self.scheme, gostr::join_host_port(&self.host, self.port), path)
    }

    /// The request-target sent on the wire: the path and query, without a fragment.
    fn target(&self) -> String {
        let path = self.path.split('#').next().unwrap_or("");
        if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        }
    }

    /// The same request on plain HTTP (upstream's fallback for hooks whose server answers HTTP on an HTTPS port).
    pub(crate) fn as_plain_http(&self) -> Request {
        let mut r = self.clone();
        r.scheme = "http".to_owned();
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Authorization"));
        r
    }

    /// The request a redirect to `location` leads to, when it stays on the same host name.
    fn redirect(&self, location: &str) -> Option<Result<Request, String>> {
        let base = url::Url::parse(&self.url()).ok()?;
        let next = match base.join(location) {
            Ok(next) => next,
            Err(e) => return Some(Err(format!("failed to parse Location header {}: {e}", gostr::quote(location)))),
        };
        if next.host_str() != base.host_str() {
            return None;
        }
        let scheme = next.scheme().to_owned();
        if scheme != "http" && scheme != "https" {
            return Some(Err(format!("unsupported protocol scheme {}", gostr::quote(&scheme))));
        }
        let mut path = next.path().to_owned();
        if let Some(q) = next.query() {
            path.push('?');
            path.push_str(q);
        }
        let port = next.port_or_known_default().unwrap_or(self.port);
        Some(Ok(Request { scheme, port, path, ..self.clone() }))
    }
}

/// GETs `req` within `timeout` (`None`: no limit), following redirects to the same host. `Err` is Go's
/// `*url.Error` text.
pub(crate) async fn get(req: &Request, timeout: Option<Duration>) -> Result<Response, String> {
    let follow = async {
        let mut current = req.clone();
        let mut followed = 0;
        loop {
            let (response, location) =
                send(&current).await.map_err(|e| format!("Get {}: {e}", gostr::quote(&current.url())))?;
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            let next = match location.filter(|_| redirect).and_then(|l| current.redirect(&l)) {
                None => return Ok(response),
                Some(Err(e)) => return Err(format!("Get {}: {e}", gostr::quote(&current.url()))),
                Some(Ok(next)) => next,
            };
            if followed >= 10 {
                return Err(format!("Get {}: stopped after 10 redirects", gostr::quote(&next.url())));
            }
            followed += 1;
            current = next;
        }
    };
    match timeout {
        None => follow.await,
        Some(t) => match tokio::time::timeout(t, follow).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "Get {}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                gostr::quote(&req.url())
            )),
        },
    }
}

/// An httpGet probe: 200–399 is healthy (a redirect not followed is a warning), anything else fails.
pub(crate) async fn probe(req: &Request, timeout: Duration) -> Result<Outcome, Errored> {
    let response = match get(req, Some(timeout)).await {
        Ok(r) => r,
        // Transport errors and timeouts are failures, as upstream turns them.
        Err(e) => return Ok(Outcome::Failure(e)),
    };
    let body = String::from_utf8_lossy(&response.body).into_owned();
    Ok(match response.status {
        200..=299 => Outcome::Success(body),
        300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {body}")),
        code => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    })
}

/// One exchange on a fresh connection: the response and its `Location` header.
async fn send(req: &Request) -> Result<(Response, Option<String>), String> {
    let stream = tcp::dial(&req.host, req.port, Duration::from_secs(30)).await?;
    match req.scheme.as_str() {
        "http" => exchange(stream, req).await,
        "https" => exchange(tls::connect(stream, &req.host).await?, req).await,
        other => Err(format!("unsupported protocol scheme {}", gostr::quote(other))),
    }
}

async fn exchange<IO>(io: IO, req: &Request) -> Result<(Response, Option<String>), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io)).await.map_err(hyper_error)?;
    // The connection task ends with the exchange: it is aborted when this function returns or is cancelled.
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let authority = req.host_header.clone().unwrap_or_else(|| gostr::join_host_port(&req.host, req.port));
    let mut builder = hyper::Request::get(req.target()).header(http::header::HOST, authority);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // Upstream's probe transport disables keep-alives.
    let request = builder
        .header(http::header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("net/http: invalid request: {e}"))?;
    let response = sender.send_request(request).await.map_err(hyper_error)?;
    let status = response.status().as_u16();
    let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut body = response.into_body();
    let mut data = Vec::new();
    while data.len() < MAX_BODY {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return Err(hyper_error(e)),
        }
    }
    data.truncate(MAX_BODY);
    Ok((Response { status, body: data }, location))
}

/// Go's texts for the usual transport failures.
fn hyper_error(e: hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "EOF".to_owned()
    } else if e.is_parse() {
        format!("net/http: HTTP/1.x transport connection broken: malformed HTTP response ({e})")
    } else {
        e.to_string()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
