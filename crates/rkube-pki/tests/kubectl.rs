//! Real kubectl (Go's TLS stack) against `server_tls_config()`, using the kubeconfigs this crate writes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rkube_pki::{ClientIdentity, Pki, PkiConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

/// One request as the fake API server saw it.
#[derive(Debug, Clone)]
struct Seen {
    identity: Option<ClientIdentity>,
    request_head: String,
}

/// Serves every connection with `200 ok` over HTTP/1.1 and records who asked what.
async fn fake_apiserver(pki: &Pki) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    // The real server will speak h2; this stand-in only speaks HTTP/1.1, so offer just that.
    let mut config = (*pki.server_tls_config().expect("server config")).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|leaf| rkube_pki::client_identity(leaf));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .expect("lock")
                    .push(Seen { identity, request_head: String::from_utf8_lossy(&head).into_owned() });
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

async fn kubectl_get_healthz(kubeconfig: &Path) -> std::process::Output {
    tokio::process::Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", "/healthz"])
        .output()
        .await
        .expect("run kubectl")
}

#[tokio::test]
async fn kubectl_authenticates_with_the_admin_kubeconfig() {
    if !Path::new(KUBECTL).exists() {
        println!("note: {KUBECTL} is absent; skipping");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(&PkiConfig::new(tmp.path().join("tls"), "node-a")).expect("pki");
    let (port, seen) = fake_apiserver(&pki).await;
    let kubeconfig = tmp.path().join("kubeconfig.yaml");
    pki.write_admin_kubeconfig(&kubeconfig, &format!("https://127.0.0.1:{port}")).expect("kubeconfig");

    let out = kubectl_get_healthz(&kubeconfig).await;
    assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let seen = seen.lock().expect("lock").clone();
    let first = seen.first().expect("a request");
    let id = first.identity.as_ref().expect("client certificate");
    assert_eq!(id.username, "system:admin");
    assert_eq!(id.groups, ["system:masters"]);
    assert!(first.request_head.starts_with("GET /healthz"), "{}", first.request_head);
}

#[tokio::test]
async fn kubectl_sends_the_bearer_token_of_a_token_kubeconfig() {
    if !Path::new(KUBECTL).exists() {
        println!("note: {KUBECTL} is absent; skipping");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(&PkiConfig::new(tmp.path().join("tls"), "node-a")).expect("pki");
    let (port, seen) = fake_apiserver(&pki).await;
    let kubeconfig = tmp.path().join("token.yaml");
    // "localhost" in the URL: the serving certificate must hold it for Go's verifier.
    pki.token_kubeconfig(&format!("https://localhost:{port}"), "bootstrap", "abcdef.0123456789abcdef")
        .write(&kubeconfig)
        .expect("kubeconfig");

    let out = kubectl_get_healthz(&kubeconfig).await;
    assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    let seen = seen.lock().expect("lock").clone();
    let first = seen.first().expect("a request");
    assert!(first.identity.is_none());
    assert!(
        first.request_head.to_ascii_lowercase().contains("authorization: bearer abcdef.0123456789abcdef"),
        "{}",
        first.request_head
    );
}
