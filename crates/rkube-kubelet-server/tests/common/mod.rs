//! Test fixtures with the real runtime: a private containerd per test (removed with every pod, shim and
//! mount when the guard drops, also on failure), certificates from a throw-away CA, the agent API on a free
//! loopback port, and small HTTPS / WebSocket clients.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use rkube_cri::{ContainerdConfig, Runtime, Supervisor, remove_all_pods};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub(crate) type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A test's containerd, connected, with the pause and busybox images.
pub(crate) struct Node {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) supervisor: Option<Supervisor>,
    pub(crate) runtime: Runtime,
    pub(crate) bridge: String,
}

pub(crate) const BUSYBOX: &str = "rkube.io/test/busybox:1";

impl Node {
    pub(crate) async fn start(bridge: &str, subnet: &str) -> Node {
        let dir = tempfile::Builder::new().prefix("rkks").tempdir_in("/tmp").unwrap();
        let config = ContainerdConfig::new(dir.path()).unwrap();
        std::fs::create_dir_all(&config.cni_conf_dir).unwrap();
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("{bridge}-net"),
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": dir.path().join("ipam")}},
                {"type": "loopback"},
            ],
        });
        std::fs::write(config.cni_conf_dir.join("10-test.conflist"), conflist.to_string()).unwrap();
        let mut node = Node {
            runtime: Runtime::connect_lazy(&config.socket()).unwrap(),
            bridge: bridge.to_owned(),
            supervisor: None,
            dir,
        };
        let supervisor = Supervisor::start(config).await.unwrap();
        node.runtime = Runtime::connect(&supervisor.endpoint()).await.unwrap();
        node.supervisor = Some(supervisor);
        let socket = node.socket();
        rkube_cri::images::import_bytes(&socket, rkube_cri::pause::IMAGE, &rkube_cri::pause::archive()).await.unwrap();
        rkube_cri::images::import_bytes(&socket, BUSYBOX, &rkube_cri::oci::busybox_image(BUSYBOX).unwrap())
            .await
            .unwrap();
        node.runtime.wait_ready(Duration::from_secs(15)).await.unwrap();
        node
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.dir.path().join("pods")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let socket = self.socket();
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(runtime) = Runtime::connect(&socket).await
                        && let Err(e) = remove_all_pods(&runtime).await
                    {
                        eprintln!("cleanup: removing pods: {e}");
                    }
                })
            });
        });
        if let Some(supervisor) = self.supervisor.take() {
            let pid = supervisor.pid();
            drop(supervisor);
            let deadline = Instant::now() + Duration::from_secs(15);
            while pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::process::Command::new("ip").args(["link", "del", &self.bridge]).status();
        let dir = self.dir.path().to_string_lossy().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> =
            mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            let _ = std::process::Command::new("umount").args(["-l", mount]).status();
        }
    }
}

/// A CA, the agent's serving certificate and a client certificate, as rustls configs.
pub(crate) struct Pki {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) client: Arc<rustls::ClientConfig>,
    /// Trusts the server but presents no certificate.
    pub(crate) anonymous: Arc<rustls::ClientConfig>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |san: Option<SanType>, usage| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.subject_alt_names = san.into_iter().collect();
            p.extended_key_usages = vec![usage];
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
        };
        let (server_cert, server_key) =
            leaf(Some(SanType::IpAddress([127, 0, 0, 1].into())), ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(None, ExtendedKeyUsagePurpose::ClientAuth);
        let ca_der: CertificateDer<'static> = ca_cert.der().clone();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).unwrap();
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert], server_key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(vec![client_cert], client_key)
            .unwrap();
        let anonymous = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki { server: Arc::new(server), client: Arc::new(client), anonymous: Arc::new(anonymous) }
    }
}

/// The agent API under test, stopped on drop.
pub(crate) struct Agent {
    pub(crate) addr: SocketAddr,
    pub(crate) pki: Pki,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Agent {
    pub(crate) async fn start(node: &Node) -> Agent {
        let pki = Pki::new();
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let config = rkube_kubelet_server::ServerConfig {
            addr,
            tls: pki.server.clone(),
            pod_logs_dir: node.logs_dir(),
            node_name: "test-node".into(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let runtime = node.runtime.clone();
        let task = tokio::spawn(async move {
            rkube_kubelet_server::serve(config, runtime, stop_rx, Some(ready_tx)).await.unwrap();
        });
        ready.await.unwrap();
        Agent { addr, pki, stop, task: Some(task) }
    }

    /// Stops the server and waits for it to return.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t).await.expect("server stops").unwrap();
        }
    }

    pub(crate) async fn connect(&self, config: &Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
        // TLS 1.3 reports a refused client certificate only on the first read: probe with a request later.
        tls.flush().await?;
        Ok(tls)
    }

    /// A GET with the client certificate: status and whole body.
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let mut s = self.connect(&self.pki.client).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw)).await.expect("response in time").ok();
        parse_response(&raw)
    }

    /// Opens a GET and returns the stream after the response head (for `follow`).
    pub(crate) async fn open(&self, path: &str) -> (String, Tls) {
        let mut s = self.connect(&self.pki.client).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        (read_head(&mut s).await, s)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub(crate) async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Status and body of a raw HTTP/1.1 response (chunked or not).
pub(crate) fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, body)
}

pub(crate) fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A minimal WebSocket client (RFC 6455 framing, masked client frames) for the channel protocols.
pub(crate) struct Ws {
    pub(crate) s: Tls,
}

impl Ws {
    /// Sends an upgrade for `path` with `protocol`; the response head and, on 101, the connection.
    pub(crate) async fn open(agent: &Agent, path: &str, protocol: &str) -> (String, Option<Ws>, String) {
        let mut s = agent.connect(&agent.pki.client).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let head = read_head(&mut s).await;
        if head.starts_with("HTTP/1.1 101") {
            return (head, Some(Ws { s }), String::new());
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        (head, None, String::from_utf8_lossy(&rest).into_owned())
    }

    /// The next data message (binary or text), or `None` once closed.
    pub(crate) async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).await.ok()?;
            let opcode = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).await.ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).await.ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.s.read_exact(&mut payload).await.ok()?;
            match opcode {
                0x8 => return None,
                0x0..=0x2 => return Some(payload),
                _ => continue,
            }
        }
    }

    /// Sends one binary message.
    pub(crate) async fn send(&mut self, data: &[u8]) {
        let mask = [0x11u8, 0x22, 0x33, 0x44];
        let mut frame = vec![0x82u8];
        if data.len() < 126 {
            frame.push(0x80 | data.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&frame).await.unwrap();
    }

    /// Everything received per channel (first byte of each message) until the server closes.
    pub(crate) async fn drain(&mut self, timeout: Duration) -> std::collections::BTreeMap<u8, Vec<u8>> {
        let mut out = std::collections::BTreeMap::<u8, Vec<u8>>::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.recv()).await {
            if let Some((ch, data)) = m.split_first() {
                out.entry(*ch).or_default().extend_from_slice(data);
            }
        }
        out
    }
}

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
