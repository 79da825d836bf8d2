//! End-to-end tests of joining with a token: `rkube token`, `rkube server --token`, and a real `rkube agent`
//! (host network namespace, `HOST_NODE_ARGS`) that checks the server's CA against the token's hash, gets its
//! certificates by CertificateSigningRequests and becomes Ready; and each refusal with its clear error.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, json};
use serde_json::Value;

fn rkube(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rkube"));
    c.args(args);
    c
}

fn token_create(s: &Server, extra: &[&str]) -> String {
    let out = rkube(&["token", "create", "--kubeconfig"]).arg(&s.kubeconfig).args(extra).output().unwrap();
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// `K10<hash>::<id>.<secret>` → (hash, id).
fn split_token(token: &str) -> (String, String) {
    let (hash, cred) = token.strip_prefix("K10").and_then(|t| t.split_once("::")).expect("K10 form");
    let (id, secret) = cred.split_once('.').expect("<id>.<secret>");
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert!(id.len() == 6 && secret.len() == 16, "{token}");
    (hash.to_owned(), id.to_owned())
}

/// An `rkube agent` this test started: stopped by PID and cleaned (`rkube agent clean`) when dropped.
struct Agent {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    name: String,
    port: u16,
}

impl Agent {
    fn new() -> Agent {
        let port = common::free_port();
        Agent { child: None, dir: tempfile::tempdir().unwrap(), name: format!("joined-{port}"), port }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn command(&self, server: &str, token: Option<&str>) -> Command {
        let mut c = rkube(&["agent", "--server", server, "--node-name", &self.name]);
        if let Some(t) = token {
            c.args(["--token", t]);
        }
        c.arg("--data-dir")
            .arg(self.dir.path())
            .args(["--kubelet-port", &self.port.to_string(), "--cni-bridge", &format!("rk{}", self.port)])
            .args(common::HOST_NODE_ARGS)
            .env("RUST_LOG", "info")
            .env_remove("RKUBE_TOKEN")
            .stderr(std::fs::File::create(self.log()).unwrap());
        c
    }

    /// Starts the agent and waits for "is ready".
    fn start(&mut self, server: &str, token: Option<&str>) {
        let mut cmd = self.command(server, token);
        let log = self.log();
        self.child =
            Some(common::spawn_until_ready(&mut cmd, 90, &|| std::fs::read_to_string(&log).unwrap_or_default()));
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            common::stop_child(&mut c);
        }
    }

    /// Runs the agent expecting it to fail within 60 s; returns its stderr.
    fn refused(&mut self, server: &str, token: &str) -> String {
        let mut child = self.command(server, Some(token)).stdout(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                common::stop_child(&mut child);
                panic!("the agent did not give up within 60 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let log = self.log_text();
        assert!(!status.success(), "the agent must refuse:\n{log}");
        log
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
        let _ = rkube(&["agent", "clean", "--data-dir"]).arg(self.dir.path()).output();
    }
}

fn csrs(s: &Server) -> Vec<Value> {
    json(s, &["get", "csr", "-o", "json"])["items"].as_array().cloned().unwrap_or_default()
}

fn approved(csr: &Value) -> &Value {
    let cs = csr["status"]["conditions"].as_array().unwrap_or_else(|| panic!("no conditions: {csr}"));
    cs.iter().find(|c| c["type"] == "Approved").unwrap_or_else(|| panic!("not approved: {csr}"))
}

fn openssl(args: &[&str]) -> String {
    let out: Output = Command::new("openssl").args(args).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn token_create_list_delete_and_the_server_token() {
    let out = rkube(&["token", "generate"]).output().unwrap();
    let fixed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(fixed.len() == 23 && fixed.as_bytes()[6] == b'.', "{fixed}");
    let s = Server::start_with(&["--token", &fixed]);
    let ca_hash = sha256_hex(&s.dir.path().join("server/tls/ca.crt"));

    // `rkube server --token`: the Secret exists without expiry and the join token is written for agents.
    let written = std::fs::read_to_string(s.dir.path().join("server/token")).unwrap();
    assert_eq!(written.trim(), format!("K10{ca_hash}::{fixed}"));
    let fixed_secret =
        json(&s, &["get", "secret", "-n", "kube-system", &format!("bootstrap-token-{}", &fixed[..6]), "-o", "json"]);
    assert!(fixed_secret["data"].get("expiration").is_none(), "{fixed_secret}");

    let token = token_create(&s, &["--description", "e2e join"]);
    let (hash, id) = split_token(&token);
    assert_eq!(hash, ca_hash, "the token pins the cluster CA");
    let secret = json(&s, &["get", "secret", "-n", "kube-system", &format!("bootstrap-token-{id}"), "-o", "json"]);
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    let data = |k: &str| {
        let b64 = secret["data"][k].as_str().unwrap_or_else(|| panic!("no {k} in {secret}"));
        let out = Command::new("base64").arg("-d").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        out.stdin.as_ref().unwrap().write_all(b64.as_bytes()).unwrap();
        String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
    };
    assert_eq!(data("token-id"), id);
    assert_eq!(data("usage-bootstrap-authentication"), "true");
    assert_eq!(data("usage-bootstrap-signing"), "true");
    assert_eq!(data("auth-extra-groups"), "system:bootstrappers:rkube:default-node-token");
    assert_eq!(data("description"), "e2e join");
    assert!(data("expiration").ends_with('Z'), "24h by default: {}", data("expiration"));

    let list = rkube(&["token", "list", "--kubeconfig"]).arg(&s.kubeconfig).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.starts_with("TOKEN") && list.contains(&id) && list.contains("e2e join"), "{list}");
    assert!(list.lines().any(|l| l.starts_with(&fixed) && l.contains("<forever>")), "{list}");

    let del = rkube(&["token", "delete", &token, "--kubeconfig"]).arg(&s.kubeconfig).output().unwrap();
    assert!(del.status.success(), "{}", String::from_utf8_lossy(&del.stderr));
    s.fails("1.33", &["get", "secret", "-n", "kube-system", &format!("bootstrap-token-{id}")]);

    // A server --token that is not a token is refused before anything starts.
    let bad = rkube(&["server", "--token", "hunter2", "--data-dir"]).arg(s.dir.path().join("other")).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("<id>.<secret>"), "{stderr}");
}

#[test]
fn an_agent_joins_with_a_fresh_token_by_approved_csrs_and_restarts_on_its_saved_certificates() {
    let (subnet, _lock) = common::reserve_subnet();
    let cidr = format!("{subnet}/24");
    let s = Server::start_with(&["--cluster-cidr", &cidr, "--node-cidr-mask-size", "24"]);
    let token = token_create(&s, &[]);
    let (_, id) = split_token(&token);
    let mut agent = Agent::new();
    agent.start(&s.url(), Some(&token));
    let name = agent.name.clone();
    let node = json(&s, &["get", "node", &name]);
    let ready = node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "{node}");

    // Two requests, both approved and issued: the client certificate asked with the bootstrap token, the serving
    // certificate asked by the node itself.
    let all = csrs(&s);
    assert_eq!(all.len(), 2, "{all:?}");
    let client = all.iter().find(|c| c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet").unwrap();
    assert_eq!(client["spec"]["username"], format!("system:bootstrap:{id}"));
    let groups = client["spec"]["groups"].as_array().unwrap();
    assert!(groups.iter().any(|g| g == "system:bootstrappers:rkube:default-node-token"), "{groups:?}");
    assert_eq!(approved(client)["reason"], "AutoApproved");
    assert_eq!(approved(client)["message"], "Auto approving kubelet client certificate after SubjectAccessReview.");
    let serving = all.iter().find(|c| c["spec"]["signerName"] == "kubernetes.io/kubelet-serving").unwrap();
    assert_eq!(serving["spec"]["username"], format!("system:node:{name}"));
    assert_eq!(approved(serving)["reason"], "AutoApproved");
    for c in [client, serving] {
        assert!(!c["status"]["certificate"].as_str().unwrap_or_default().is_empty(), "issued: {c}");
    }
    let table = s.ok("1.33", &["get", "csr"]);
    assert_eq!(table.matches("Approved,Issued").count(), 2, "{table}");
    assert!(table.contains("SIGNERNAME") && table.contains(&format!("system:bootstrap:{id}")), "{table}");

    // The node's certificates are the cluster CA's, for the node's identity and names.
    let ca = s.dir.path().join("server/tls/ca.crt");
    let files = agent.dir.path().join("agent");
    for f in ["client-kubelet.crt", "serving-kubelet.crt"] {
        let path = files.join(f);
        let verified = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), path.to_str().unwrap()]);
        assert!(verified.contains(": OK"), "{f}: {verified}");
        let subject = openssl(&["x509", "-noout", "-subject", "-in", path.to_str().unwrap()]);
        assert!(subject.contains("system:nodes") && subject.contains(&format!("system:node:{name}")), "{subject}");
    }
    let sans = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        files.join("serving-kubelet.crt").to_str().unwrap(),
    ]);
    assert!(sans.contains(&format!("DNS:{name}")) && sans.contains("IP Address:"), "{sans}");
    assert_eq!(std::fs::read(files.join("server-ca.crt")).unwrap(), std::fs::read(&ca).unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(files.join("client-kubelet.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // The API server reaches the agent API (pod logs) over TLS checked against the CSR-issued serving certificate.
    let tar = rkube_cri::oci::busybox_image("rkube.test/busybox:1").unwrap();
    let archive = agent.dir.path().join("busybox.tar");
    std::fs::write(&archive, tar).unwrap();
    let imported =
        rkube(&["images", "import", archive.to_str().unwrap(), "--data-dir"]).arg(agent.dir.path()).output().unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    s.ok(
        "1.33",
        &[
            "run",
            "hello",
            "--image=rkube.test/busybox:1",
            "--image-pull-policy=Never",
            "--",
            "sh",
            "-c",
            "echo hello from a joined node; sleep 3600",
        ],
    );
    common::eventually(&s, 60, "pod hello runs on the joined node", || {
        let pod = json(&s, &["get", "pod", "hello"]);
        pod["status"]["phase"] == "Running" && pod["spec"]["nodeName"] == name.as_str()
    });
    common::eventually(&s, 30, "kubectl logs reaches the joined agent", || {
        s.kubectl("1.33", &["logs", "hello"]).stdout.starts_with(b"hello from a joined node")
    });

    // Restarted without a token, the agent uses its saved certificates: no new request.
    agent.stop();
    agent.start(&s.url(), None);
    assert_eq!(csrs(&s).len(), 2, "no new CSR after a restart");
}

#[test]
fn an_expired_token_is_refused_with_what_to_do() {
    let s = Server::start();
    let token = token_create(&s, &["--ttl", "1s"]);
    let (_, id) = split_token(&token);
    // Wait until the token is past its expiry (as `rkube token list` sees it), then join with it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = rkube(&["token", "list", "--kubeconfig"]).arg(&s.kubeconfig).output().unwrap();
        let list = String::from_utf8(list.stdout).unwrap();
        if list.lines().any(|l| l.starts_with(&id) && l.contains("<expired>")) {
            break;
        }
        assert!(Instant::now() < deadline, "the token did not expire: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut agent = Agent::new();
    let log = agent.refused(&s.url(), &token);
    assert!(log.contains("invalid or has expired") && log.contains("rkube token create"), "{log}");
    assert!(log.contains("401"), "{log}");
    assert!(csrs(&s).is_empty(), "no CSR was created");
}

/// An HTTPS server that is not this cluster: it answers every request with `status` and `body` and records the
/// Authorization headers it was sent. Runs on its own tokio runtime, dropped with it.
struct Impostor {
    port: u16,
    authorizations: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Impostor {
    fn start(status: &str, body: String) -> Impostor {
        let dir = tempfile::tempdir().unwrap();
        let pki =
            rkube_pki::Pki::load_or_create(&rkube_pki::PkiConfig::new(dir.path().join("tls"), "impostor")).unwrap();
        let mut tls = (*pki.server_tls_config().unwrap()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (auth, reqs, status) = (authorizations.clone(), requests.clone(), status.to_owned());
        rt.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, auth, reqs, status, body) =
                    (acceptor.clone(), auth.clone(), reqs.clone(), status.clone(), body.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    *reqs.lock().unwrap() += 1;
                    for line in String::from_utf8_lossy(&head).lines() {
                        if line.to_ascii_lowercase().starts_with("authorization:") {
                            auth.lock().unwrap().push(line.to_owned());
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Impostor { port, authorizations, requests, _rt: rt, _dir: dir }
    }

    /// Serves a well-formed cluster-info whose CA is its own.
    fn with_its_own_ca() -> Impostor {
        let dir = tempfile::tempdir().unwrap();
        let pki = rkube_pki::Pki::load_or_create(&rkube_pki::PkiConfig::new(dir.path().join("tls"), "other")).unwrap();
        let mut kc = rkube_pki::Kubeconfig::new("https://127.0.0.1:6443", pki.ca_cert_pem(), "", Default::default());
        kc.users.clear();
        kc.contexts.clear();
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "cluster-info", "namespace": "kube-public" },
            "data": { "kubeconfig": kc.to_yaml().unwrap() },
        });
        Impostor::start("200 OK", cm.to_string())
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

#[test]
fn a_wrong_ca_hash_is_refused_before_any_credential_is_sent() {
    let s = Server::start();
    let token = token_create(&s, &[]);
    let (hash, id) = split_token(&token);

    // The real server, but a token pinning another CA.
    let wrong = "0".repeat(64);
    let mut agent = Agent::new();
    let log = agent.refused(&s.url(), &token.replace(&hash, &wrong));
    assert!(log.contains("man-in-the-middle") && log.contains(&wrong) && log.contains(&hash), "{log}");
    assert!(csrs(&s).is_empty(), "no CSR was created");

    // The right token, but a server that is not this cluster: refused, and it never saw the token.
    let impostor = Impostor::with_its_own_ca();
    let log = agent.refused(&impostor.url(), &token);
    assert!(log.contains("man-in-the-middle") && log.contains(&hash), "{log}");
    assert!(*impostor.requests.lock().unwrap() > 0, "the agent asked the impostor for cluster-info");
    assert_eq!(*impostor.authorizations.lock().unwrap(), Vec::<String>::new(), "no credential was sent");
    let secret = &token[token.len() - 16..];
    assert!(!log.contains(secret), "the log does not show the token's secret: {log}");
    let _ = id;
}

#[test]
fn garbage_tokens_and_servers_that_are_not_rkube_are_refused_clearly() {
    let mut agent = Agent::new();
    let unused = format!("https://127.0.0.1:{}", common::free_port());
    for garbage in ["hunter2", "abcdef.0123456789abcdef", "K10abc::abcdef.0123456789abcdef"] {
        let log = agent.refused(&unused, garbage);
        assert!(log.contains("invalid join token") && log.contains("K10<64 hex digits"), "{garbage}: {log}");
    }
    let token = format!("K10{}::abcdef.0123456789abcdef", "a".repeat(64));
    // An HTTPS server without cluster-info (404 with a page that is not a Kubernetes Status).
    let web = Impostor::start("404 Not Found", "<html>no such page</html>".to_owned());
    let log = agent.refused(&web.url(), &token);
    assert!(log.contains("is not an rkube server"), "{log}");
    assert_eq!(*web.authorizations.lock().unwrap(), Vec::<String>::new());
    // Nothing listening at all.
    let log = agent.refused(&unused, &token);
    assert!(log.contains("cannot reach the API server"), "{log}");
    // A plain TCP service that does not speak TLS.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in plain.incoming().flatten().take(4) {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
    });
    let log = agent.refused(&format!("https://127.0.0.1:{plain_port}"), &token);
    assert!(log.contains("cannot reach the API server") || log.contains("is not an rkube server"), "{log}");
}

#[test]
fn a_joined_agent_renews_its_certificates_as_itself_before_they_expire() {
    let (subnet, _lock) = common::reserve_subnet();
    let cidr = format!("{subnet}/24");
    // Certificates live 40 s: due at once by the 80% rule (the start is backdated 5 minutes, as upstream does), so
    // the agent renews them after its least interval between renewals (30 s).
    let s = Server::start_with(&[
        "--cluster-signing-duration",
        "40s",
        "--cluster-cidr",
        &cidr,
        "--node-cidr-mask-size",
        "24",
    ]);
    let token = token_create(&s, &[]);
    let mut agent = Agent::new();
    agent.start(&s.url(), Some(&token));
    let name = agent.name.clone();
    let first = std::fs::read(agent.dir.path().join("agent/client-kubelet.crt")).unwrap();
    let own = |c: &Value| {
        c["spec"]["username"] == format!("system:node:{name}")
            && c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    };
    common::eventually(&s, 60, "the node asks for a new client certificate as itself", || {
        csrs(&s).iter().any(|c| own(c) && !c["status"]["certificate"].as_str().unwrap_or_default().is_empty())
    });
    let renewal = csrs(&s).into_iter().find(|c| own(c)).unwrap();
    assert_eq!(
        approved(&renewal)["message"],
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    );
    common::eventually(&s, 60, "the agent restarted on its renewed certificates", || {
        agent.log_text().contains("certificates renewed")
            && std::fs::read(agent.dir.path().join("agent/client-kubelet.crt")).unwrap() != first
    });
    let ca = s.dir.path().join("server/tls/ca.crt");
    let renewed = agent.dir.path().join("agent/client-kubelet.crt");
    let verified = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), renewed.to_str().unwrap()]);
    assert!(verified.contains(": OK"), "{verified}");
    // The restarted agent keeps its node alive: its Lease is renewed again, and the node stays Ready.
    let renew_time = || json(&s, &["get", "lease", "-n", "kube-node-lease", &name])["spec"]["renewTime"].clone();
    let before = renew_time();
    common::eventually(&s, 30, "the restarted agent renews its Lease", || renew_time() != before);
    let node = json(&s, &["get", "node", &name]);
    let ready = node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "{node}");
}

/// A CSR manifest for a node client certificate `system:node:<node>`, made with openssl.
fn node_client_csr(dir: &Path, name: &str, node: &str, claimed_user: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let req = dir.join(format!("{name}.csr"));
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&req)
        .args(["-subj", &format!("/O=system:nodes/CN=system:node:{node}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    let b64 = Command::new("base64").args(["-w0"]).arg(&req).output().unwrap().stdout;
    let manifest = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": { "name": name },
        "spec": {
            "request": String::from_utf8(b64).unwrap(),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
            // The server records the requester itself: this claim is ignored.
            "username": claimed_user,
        },
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, manifest.to_string()).unwrap();
    path
}

#[test]
fn csrs_are_approved_only_after_a_subject_access_review_and_by_kubectl_certificate() {
    let s = Server::start();
    let dir = s.dir.path();
    s.ok(
        "1.33",
        &[
            "create",
            "clusterrole",
            "csr-maker",
            "--verb=create,get,list,watch",
            "--resource=certificatesigningrequests",
        ],
    );
    s.ok("1.33", &["create", "clusterrolebinding", "bob-csr", "--clusterrole=csr-maker", "--user=bob"]);
    let bob = node_client_csr(dir, "from-bob", "fake", "system:admin");
    s.ok("1.33", &["create", "-f", bob.to_str().unwrap(), "--as=bob"]);
    // The admin (system:masters) may create certificatesigningrequests/nodeclient: approved and issued.
    let admin = node_client_csr(dir, "from-admin", "other", "");
    s.ok("1.33", &["create", "-f", admin.to_str().unwrap()]);
    common::eventually(&s, 30, "the admin's request is issued", || {
        json(&s, &["get", "csr", "from-admin"])["status"]["certificate"].as_str().is_some_and(|c| !c.is_empty())
    });
    // Bob may create CSRs but not certificatesigningrequests/nodeclient: his stays Pending.
    let pending = json(&s, &["get", "csr", "from-bob"]);
    assert_eq!(pending["spec"]["username"], "bob", "the server recorded the requester: {pending}");
    assert!(pending["status"].get("conditions").is_none(), "{pending}");
    assert!(s.ok("1.33", &["get", "csr", "from-bob"]).contains("Pending"));
    // An operator approves it through the approval subresource; the signer then issues it.
    s.ok("1.33", &["certificate", "approve", "from-bob"]);
    common::eventually(&s, 30, "bob's request is issued after kubectl certificate approve", || {
        s.ok("1.33", &["get", "csr", "from-bob"]).contains("Approved,Issued")
    });
    let third = node_client_csr(dir, "denied", "third", "");
    s.ok("1.33", &["create", "-f", third.to_str().unwrap(), "--as=bob"]);
    s.ok("1.33", &["certificate", "deny", "denied"]);
    let denied = json(&s, &["get", "csr", "denied"]);
    assert_eq!(denied["status"]["conditions"][0]["type"], "Denied", "{denied}");
    assert!(denied["status"].get("certificate").is_none(), "{denied}");
    // Approval conditions cannot be written through the status subresource, nor the spec changed.
    let mut edited = denied.clone();
    edited["status"]["conditions"][0]["type"] = "Approved".into();
    edited["spec"]["username"] = "mallory".into();
    let path = dir.join("edited.json");
    std::fs::write(&path, edited.to_string()).unwrap();
    s.ok("1.33", &["replace", "--subresource=status", "-f", path.to_str().unwrap()]);
    let after = json(&s, &["get", "csr", "denied"]);
    assert_eq!(after["status"]["conditions"][0]["type"], "Denied", "{after}");
    assert_eq!(after["spec"]["username"], "bob");
}
