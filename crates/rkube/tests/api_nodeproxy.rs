//! `kubectl logs` and the exec/attach/port-forward upgrades are forwarded to the pod's node agent, over TLS
//! with the API server's kubelet-client certificate. The node agent is not built yet (issue 5), so this test
//! stands up a stand-in agent: a TLS server with a certificate from the cluster CA that answers the kubelet
//! API paths (`/containerLogs/...`, and `/exec/...` as an upgrade that echoes bytes). That stand-in is the only
//! mock here; the API server, kubectl and TLS are real.

mod common;

use std::sync::{Arc, Mutex};

use common::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        buf.push(b[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The stand-in agent: returns its port; records the client identities and request lines it saw.
async fn fake_agent(pki: &rkube_pki::Pki, seen: Arc<Mutex<Vec<String>>>) -> u16 {
    let serving = pki
        .issue_serving_cert(
            "fake-agent",
            &[rkube_pki::San::parse("127.0.0.1").expect("san")],
            std::time::Duration::from_secs(3600),
        )
        .expect("agent cert");
    let config = rkube_pki::server_tls_config(&serving, pki.ca_cert_der()).expect("tls config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let who = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| rkube_pki::client_identity(c.as_ref()))
                    .map(|i| i.username)
                    .unwrap_or_default();
                let head = read_head(&mut tls).await;
                let line = head.lines().next().unwrap_or_default().to_owned();
                seen.lock().expect("lock").push(format!("{who} {line}"));
                if line.contains("/containerLogs/default/p/c") {
                    let body = "hello from c\nsecond line\n";
                    let _ = tls
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                } else if line.contains("/exec/default/p/c") && head.to_lowercase().contains("upgrade: spdy/3.1") {
                    let _ = tls.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n").await;
                    let mut buf = [0u8; 64];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                } else {
                    let _ = tls.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[test]
fn logs_and_exec_reach_the_pods_node_agent() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pki = rkube_pki::Pki::load_or_create(&rkube_pki::PkiConfig::new(
        s.dir.path().join("server").join("tls"),
        "test-node",
    ))
    .expect("pki");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = rt.block_on(fake_agent(&pki, seen.clone()));

    let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#;
    assert!(s.kubectl_stdin("1.33", &["create", "-f", "-"], node).status.success());
    let status = format!(
        r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
    );
    s.ok("1.33", &["patch", "node", "n1", "--subresource=status", "--type=merge", "-p", &status]);
    let _ = s.kubectl("1.33", &["create", "serviceaccount", "default"]);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    assert!(s.kubectl_stdin("1.33", &["create", "-f", "-"], pod).status.success());
    let err = s.fails("1.33", &["logs", "p"]);
    assert!(err.contains("does not have a host assigned"), "{err}");
    let binding = s.dir.path().join("binding.json");
    std::fs::write(
        &binding,
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#,
    )
    .expect("write");
    s.ok(
        "1.33",
        &["create", "--raw", "/api/v1/namespaces/default/pods/p/binding", "-f", binding.to_str().expect("utf-8")],
    );
    assert_eq!(s.ok("1.33", &["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"]), "n1");

    for v in ["1.33", "1.27"] {
        assert_eq!(s.ok(v, &["logs", "p"]), "hello from c\nsecond line\n");
    }

    // An exec upgrade through the API server: 101 from the agent, then bytes both ways.
    let admin = rkube_pki::client_tls_config(pki.ca_cert_der(), Some(pki.admin())).expect("client tls");
    let port_api = s.port;
    let echoed = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port_api)).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(admin).connect(name, tcp).await.expect("tls");
        tls.write_all(b"POST /api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n").await.expect("write");
        let head = read_head(&mut tls).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        tls.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.expect("echo");
        buf
    });
    assert_eq!(&echoed, b"ping");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().all(|l| l.starts_with("kube-apiserver-kubelet-client ")),
        "the agent must see the API server's kubelet-client identity: {seen:?}"
    );
    assert!(seen.iter().any(|l| l.contains("GET /containerLogs/default/p/c")), "{seen:?}");
}
