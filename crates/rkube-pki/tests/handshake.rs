//! Real TLS handshakes against `server_tls_config()`: client certificates optional, verified when given, foreign ones refused.

use std::sync::Arc;
use std::time::Duration;

use rkube_pki::{ClientIdentity, IssuedCert, Pki, PkiConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What the server side saw.
#[derive(Debug)]
enum ServerSaw {
    /// Handshake done; the identity of the client certificate, if any, and the ALPN protocol.
    Accepted(Option<ClientIdentity>, Option<Vec<u8>>),
    /// Handshake refused.
    Refused(String),
}

/// Runs one connection: the server answers "ok" after the handshake; returns what the server saw and
/// whether the client read "ok".
async fn connect(pki: &Pki, client: Arc<rustls::ClientConfig>, server_name: &str) -> (ServerSaw, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(pki.server_tls_config().expect("server config"));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        match acceptor.accept(tcp).await {
            Ok(mut tls) => {
                let conn = tls.get_ref().1;
                let id = conn
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| rkube_pki::client_identity(leaf));
                let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
                tls.write_all(b"ok").await.expect("write");
                tls.shutdown().await.expect("shutdown");
                ServerSaw::Accepted(id, alpn)
            }
            Err(e) => ServerSaw::Refused(e.to_string()),
        }
    });
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    let read_ok = match TlsConnector::from(client).connect(name, tcp).await {
        Ok(mut tls) => {
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.is_ok() && buf == b"ok"
        }
        Err(_) => false,
    };
    let saw =
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("server finished").expect("server task");
    (saw, read_ok)
}

fn pki_in(dir: &std::path::Path) -> Pki {
    let mut cfg = PkiConfig::new(dir.join("tls"), "node-a");
    cfg.extra_sans = vec!["api.example.com".into()];
    Pki::load_or_create(&cfg).expect("pki")
}

fn client(pki: &Pki, identity: Option<&IssuedCert>) -> Arc<rustls::ClientConfig> {
    rkube_pki::client_tls_config(pki.ca_cert_der(), identity).expect("client config")
}

#[tokio::test]
async fn admin_certificate_authenticates_as_system_admin() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(tmp.path());
    let (saw, read_ok) = connect(&pki, client(&pki, Some(pki.admin())), "127.0.0.1").await;
    match saw {
        ServerSaw::Accepted(Some(id), alpn) => {
            assert_eq!(id.username, "system:admin");
            assert_eq!(id.groups, ["system:masters"]);
            assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
        }
        other => panic!("expected an authenticated connection, got {other:?}"),
    }
    assert!(read_ok);
}

#[tokio::test]
async fn client_without_certificate_still_connects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(tmp.path());
    let (saw, read_ok) = connect(&pki, client(&pki, None), "localhost").await;
    assert!(matches!(saw, ServerSaw::Accepted(None, _)), "{saw:?}");
    assert!(read_ok);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(tmp.path());
    let other_tmp = tempfile::tempdir().expect("tempdir");
    let other = pki_in(other_tmp.path());
    // Trusts our CA, so only the client certificate is at fault.
    let cfg = rkube_pki::client_tls_config(pki.ca_cert_der(), Some(other.admin())).expect("client config");
    let (saw, read_ok) = connect(&pki, cfg, "127.0.0.1").await;
    match saw {
        ServerSaw::Refused(reason) => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("a foreign client certificate must be refused, got {other:?}"),
    }
    assert!(!read_ok);
}

#[tokio::test]
async fn every_group_of_a_client_certificate_reaches_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(tmp.path());
    let user = pki
        .issue_client_cert("alice", &["dev", "ops", "system:authenticated"], Duration::from_secs(3600))
        .expect("issue");
    let (saw, read_ok) = connect(&pki, client(&pki, Some(&user)), "127.0.0.1").await;
    match saw {
        ServerSaw::Accepted(Some(id), _) => {
            assert_eq!(id.username, "alice");
            assert_eq!(id.groups, ["dev", "ops", "system:authenticated"]);
        }
        other => panic!("expected alice, got {other:?}"),
    }
    assert!(read_ok);
}

#[tokio::test]
async fn clients_verify_the_serving_certificate_under_every_cluster_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_in(tmp.path());
    for name in [
        "node-a",
        "localhost",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.254.0.1",
        "::1",
        "api.example.com",
    ] {
        let (saw, read_ok) = connect(&pki, client(&pki, None), name).await;
        assert!(matches!(saw, ServerSaw::Accepted(..)) && read_ok, "{name}: {saw:?}");
    }
    // A name the certificate does not hold fails the client's verification.
    let (_, read_ok) = connect(&pki, client(&pki, None), "evil.example.com").await;
    assert!(!read_ok);
}
