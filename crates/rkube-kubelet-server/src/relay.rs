//! The stream proxy: a client's exec/attach/port-forward request is replayed to the runtime's streaming
//! server (the URL CRI's Exec/Attach/PortForward returned, containerd's on 127.0.0.1) as a raw HTTP/1.1
//! request with the client's method and headers (Upgrade, Connection, Sec-WebSocket-*,
//! X-Stream-Protocol-Version, ...); on `101 Switching Protocols` bytes are copied both ways until either side
//! closes. Any other answer (e.g. a 403 for a WebSocket subprotocol the runtime does not speak) goes back to
//! the client unchanged, so that kubectl sees an upgrade failure and falls back to SPDY.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::failure::Failure;

/// Replays `req` to `target` (an `http://host:port/path` URL) and splices the upgraded connections.
pub(crate) async fn relay(
    target: &str,
    mut req: Request,
    mut stop: watch::Receiver<bool>,
) -> Result<Response, Failure> {
    let uri: http::Uri =
        target.parse().map_err(|e| Failure::internal(format!("runtime streaming URL {target:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Failure::internal(format!("runtime streaming URL {target:?}: only http:// is supported")));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| Failure::internal(format!("runtime streaming URL {target:?} has no host")))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    // `[::1]` in a URL is `::1` to connect to.
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| Failure::internal(format!("connecting to the runtime's streaming server at {authority}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| Failure::internal(format!("runtime streaming server at {authority}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "runtime streaming connection ended");
        }
    });

    let upgrade = req.headers().contains_key(http::header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    // The session's options live on the runtime's side (the URL's token); the client's query goes along only
    // for what the runtime still reads from it (the `port`s of a WebSocket port-forward).
    let path = match (uri.query(), req.uri().query()) {
        (None, Some(q)) if !q.is_empty() => format!("{}?{q}", uri.path()),
        _ => uri.path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    };
    let mut out = http::Request::builder().method(req.method().clone()).uri(path);
    for (k, v) in req.headers() {
        if k != http::header::HOST {
            out = out.header(k, v);
        }
    }
    out = out.header(http::header::HOST, authority.as_str());
    let body = if upgrade { Body::empty() } else { req.into_body() };
    let outgoing = out.body(body).map_err(|e| Failure::internal(format!("building the streaming request: {e}")))?;
    let mut resp = sender
        .send_request(outgoing)
        .await
        .map_err(|e| Failure::internal(format!("runtime streaming server at {authority}: {e}")))?;

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let runtime_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match (client_upgrade.await, runtime_upgrade.await) {
                (Ok(c), Ok(r)) => {
                    let (mut c, mut r) = (TokioIo::new(c), TokioIo::new(r));
                    tokio::select! {
                        res = tokio::io::copy_bidirectional(&mut c, &mut r) => {
                            if let Err(e) = res {
                                tracing::debug!(error = %e, "stream relay ended");
                            }
                        }
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
                (c, r) => tracing::debug!(client = c.is_ok(), runtime = r.is_ok(), "stream upgrade failed"),
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
    //! The runtime's streaming server is a stand-in here (a raw loopback listener that answers like
    //! containerd's: 101 for SPDY, 403 for a WebSocket subprotocol it does not know); the real one is
    //! exercised by the tests with containerd.

    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn read_head(s: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.expect("read") == 0 {
                break;
            }
            head.push(b[0]);
        }
        String::from_utf8(head).expect("utf8")
    }

    /// The stand-in streaming server: records each request head, upgrades SPDY and echoes, rejects v5.
    async fn fake_runtime(seen: Arc<Mutex<Vec<String>>>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut s).await;
                    seen.lock().expect("lock").push(head.clone());
                    if head.contains("v5.channel.k8s.io") {
                        let body = "requested protocol(s) are not supported";
                        let resp = format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        let _ = s.write_all(resp.as_bytes()).await;
                        return;
                    }
                    let resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\nhello-from-runtime";
                    s.write_all(resp.as_bytes()).await.expect("write");
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        format!("http://{addr}/exec/TOKEN123")
    }

    /// The agent side: every request is relayed to `target`.
    async fn front(target: String) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            let _keep = _tx;
            while let Ok((s, _)) = l.accept().await {
                let target = target.clone();
                let stop = stop.clone();
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (target, stop) = (target.clone(), stop.clone());
                    async move {
                        let resp = match relay(&target, req.map(Body::new), stop).await {
                            Ok(r) => r,
                            Err(f) => axum::response::IntoResponse::into_response(f),
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).with_upgrades(),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn spdy_upgrade_is_relayed_byte_for_byte() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let target = fake_runtime(seen.clone()).await;
        let addr = front(target).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let req = "POST /exec/ns/p/c?command=sh&stdin=true HTTP/1.1\r\nHost: agent:10250\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io\r\n\r\n";
        c.write_all(req.as_bytes()).await.expect("write");
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.to_ascii_lowercase().contains("x-stream-protocol-version: v4.channel.k8s.io"), "{head}");
        let mut greeting = [0u8; 18];
        c.read_exact(&mut greeting).await.expect("greeting");
        assert_eq!(&greeting, b"hello-from-runtime", "bytes sent with the 101 reach the client");
        let payload: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        c.write_all(&payload).await.expect("write");
        let mut back = vec![0u8; payload.len()];
        c.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, payload);

        let upstream = seen.lock().expect("lock")[0].clone();
        let lower = upstream.to_ascii_lowercase();
        assert!(upstream.starts_with("POST /exec/TOKEN123?command=sh&stdin=true HTTP/1.1\r\n"), "{upstream}");
        assert!(lower.contains("x-stream-protocol-version: v4.channel.k8s.io"), "{upstream}");
        assert!(lower.contains("x-stream-protocol-version: v3.channel.k8s.io"), "repeated headers kept: {upstream}");
        assert!(lower.contains("upgrade: spdy/3.1"), "{upstream}");
        assert!(!lower.contains("host: agent:10250"), "host is the runtime's: {upstream}");
    }

    #[tokio::test]
    async fn rejected_websocket_reaches_the_client_as_an_upgrade_failure() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let addr = front(fake_runtime(seen.clone()).await).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let req = "GET /exec/ns/p/c?command=ls&stdout=true HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n";
        c.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let mut buf = [0u8; 512];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !String::from_utf8_lossy(&raw).contains("supported") {
            match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let resp = String::from_utf8_lossy(&raw);
        assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
        assert!(resp.contains("requested protocol(s) are not supported"), "{resp}");
        let upstream = seen.lock().expect("lock")[0].to_ascii_lowercase();
        assert!(upstream.starts_with("get /exec/token123"), "{upstream}");
        assert!(upstream.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="), "{upstream}");
    }

    #[tokio::test]
    async fn unreachable_runtime_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let (_tx, stop) = watch::channel(false);
        let req = http::Request::builder().uri("/exec").body(Body::empty()).expect("req");
        let err = relay(&format!("http://{addr}/exec/x"), req, stop).await.expect_err("refused");
        assert_eq!(err.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.message.contains("connecting to the runtime's streaming server"), "{}", err.message);
    }
}
