//! Tests of the crate's pieces together (shared fixtures here, the tests in the submodules): httpGet probes against an HTTP(S) server on loopback, the workers'
//! timing and thresholds (exec probes on a scripted runtime, since no container runs in a unit test; the
//! real `ExecSync` path is tested with containerd in `tests/`), and lifecycle hook messages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ExecAction, HTTPGetAction, HTTPHeader, Lifecycle, LifecycleHandler, Pod, PodSpec, Probe, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::exec::{ExecError, Executor, Output};
use crate::outcome::Outcome;
use crate::prober::Events;
use crate::{Hook, ProbeKind, ProbeManager, ProbeUpdate, http, lifecycle};

mod hooks;
mod http_probes;
mod workers;

/// A loopback HTTP/1.1 server: `/ok` 200, `/fail` 500, `/redirect` to `/ok`, `/away` to another host,
/// `/loop` to itself, `/slow` answers after 3 s, `/big` has a 20 KiB body. It keeps every request head.
pub(super) struct Server {
    pub(super) port: u16,
    pub(super) heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(path: &str) -> (u16, Vec<(&'static str, String)>, String) {
    match path {
        "/ok" | "/" => (200, vec![], "fine".into()),
        "/fail" => (500, vec![], "boom".into()),
        "/redirect" => (302, vec![("Location", "/ok".into())], String::new()),
        "/away" => (302, vec![("Location", "http://127.0.0.2:1/ok".into())], "moved".into()),
        "/loop" => (302, vec![("Location", "/loop".into())], String::new()),
        "/big" => (200, vec![], "x".repeat(20 * 1024)),
        _ => (404, vec![], "not found".into()),
    }
}

async fn serve_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // A TLS ClientHello on this plain server: answer 400 as HTTP servers do (what clients recognise).
    if let Ok(n) = s.read(&mut chunk).await
        && n > 0
    {
        if chunk[0] == 0x16 {
            let _ =
                s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n").await;
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_owned();
    heads.lock().unwrap().push(head);
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (code, headers, body) = answer(&path);
    let mut out = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    let _ = s.write_all(out.as_bytes()).await;
    let _ = s.shutdown().await;
}

impl Server {
    /// Plain HTTP, or HTTPS with a self-signed certificate.
    pub(super) async fn start(tls: bool) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tls.then(|| {
            let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![key.cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
                )
                .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let h = heads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (h, acceptor) = (h.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(stream).await {
                                serve_one(s, h).await;
                            }
                        }
                        None => serve_one(stream, h).await,
                    }
                });
            }
        });
        Server { port, heads, task }
    }
}

pub(super) fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub(super) fn get(path: &str, port: u16) -> HTTPGetAction {
    HTTPGetAction { path: Some(path.into()), port: IntOrString::Int(port.into()), ..Default::default() }
}

pub(super) async fn probe_http(action: &HTTPGetAction) -> Outcome {
    let req = http::Request::new(action, &Container::default(), "127.0.0.1", "probe").unwrap();
    http::probe(&req, Duration::from_secs(1)).await.unwrap()
}

pub(super) fn exec_probe(name: &str) -> Probe {
    Probe { exec: Some(ExecAction { command: Some(vec![name.to_owned()]) }), ..Default::default() }
}

pub(super) fn pod(container: Container) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("uid".into()),
            ..Default::default()
        },
        spec: Some(PodSpec { containers: vec![container], ..Default::default() }),
        ..Default::default()
    }
}

/// A scripted runtime: `script(command, call number)` answers; every call is logged with its (virtual) time.
#[derive(Clone, Default)]
pub(super) struct Script {
    calls: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Script {
    pub(super) fn executor(
        &self,
        answer: impl Fn(&str, usize) -> Result<Output, ExecError> + Send + Sync + 'static,
    ) -> Executor {
        let calls = self.calls.clone();
        let t0 = tokio::time::Instant::now();
        Executor::Fake(Arc::new(move |cmd: &[String], _timeout| {
            let mut calls = calls.lock().unwrap();
            let n = calls.iter().filter(|(c, _)| c == &cmd[0]).count();
            calls.push((cmd[0].clone(), t0.elapsed()));
            answer(&cmd[0], n)
        }))
    }

    pub(super) fn times(&self, cmd: &str) -> Vec<u64> {
        self.calls.lock().unwrap().iter().filter(|(c, _)| c == cmd).map(|(_, t)| t.as_secs()).collect()
    }
}

pub(super) fn ok() -> Result<Output, ExecError> {
    Ok(Output::default())
}

pub(super) fn fail(msg: &str) -> Result<Output, ExecError> {
    Ok(Output { stdout: msg.as_bytes().to_vec(), exit_code: 1, ..Default::default() })
}

pub(super) type Captured = mpsc::UnboundedReceiver<(String, String, String)>;

pub(super) fn manager() -> (ProbeManager, mpsc::Receiver<ProbeUpdate>, Captured) {
    let (tx, events) = mpsc::unbounded_channel();
    let (m, updates) = ProbeManager::with_events(Events::Captured(tx));
    (m, updates, events)
}

pub(super) fn drain(events: &mut Captured) -> Vec<(String, String, String)> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}
