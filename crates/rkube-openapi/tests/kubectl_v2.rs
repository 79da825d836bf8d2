//! Real kubectl 1.27 against the v2 document in gnostic protobuf, served over plain HTTP on 127.0.0.1.
//!
//! kubectl up to 1.27 reads `/openapi/v2` (as protobuf only) for client-side validation, apply's patch
//! metadata and `explain --output=plaintext-openapiv2`. The server here is the one of `kubectl.rs` (just
//! enough discovery, both documents, a create endpoint that records requests) answering `/openapi/v2` by
//! `Accept` as upstream does. Skipped (with a note) when kubectl 1.27 is not installed;
//! `RKUBE_KUBECTL_V2` names another binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rkube_apimachinery::catalogue::{BUILTIN, builtin_groups};
use rkube_openapi::{V2Format, V2Protobuf};
use serde_json::{Value, json};

const DEFAULT_KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27";

/// Whether `/openapi/v3` is served; off, kubectl 1.27 has only the v2 document to go by.
static V3_SERVED: AtomicBool = AtomicBool::new(true);

fn kubectl() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("RKUBE_KUBECTL_V2").unwrap_or_else(|_| DEFAULT_KUBECTL.to_owned()));
    path.exists().then_some(path)
}

/// `/api/v1` or `/apis/<group>/<version>` discovery.
fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = BUILTIN
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.resource, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                "verbs": r.verbs, "shortNames": r.short_names, "categories": r.categories,
            })
        })
        .collect();
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// A deployment as `kubectl apply` of `deployment("nginx:1")` left it.
fn existing_deployment() -> Value {
    let mut d = deployment("nginx:1");
    let applied = serde_json::to_string(&d).unwrap_or_default();
    d["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": applied});
    d["metadata"]["namespace"] = json!("default");
    d
}

fn deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}, {"name": "side", "image": "busybox"}]},
            },
        },
    })
}

/// Answers one request: (status, content type, body).
fn answer(method: &str, target: &str, accept: Option<&str>, body: &[u8]) -> (u16, &'static str, Vec<u8>) {
    let (path, _query) = target.split_once('?').unwrap_or((target, ""));
    let ok = |v: Value| (200, "application/json", serde_json::to_vec(&v).unwrap_or_default());
    if method == "POST" {
        // Echo the object back, as a create does.
        return (201, "application/json", body.to_vec());
    }
    if path == "/apis/apps/v1/namespaces/default/deployments/web" {
        // An existing object for kubectl apply to patch; a patch answers with it too.
        return (200, "application/json", serde_json::to_vec(&existing_deployment()).unwrap_or_default());
    }
    match path {
        "/api" => ok(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})),
        "/apis" => {
            let groups: Vec<Value> = builtin_groups()
                .into_iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/version" => ok(json!({"major": "1", "minor": "27", "gitVersion": "v1.27.0"})),
        "/api/v1" => ok(resource_list("", "v1")),
        p if p.starts_with("/openapi/v3") && !V3_SERVED.load(Ordering::SeqCst) => (404, "text/plain", Vec::new()),
        "/openapi/v3" => ok(rkube_openapi::v3_index()),
        "/openapi/v2" => match rkube_openapi::v2_format(accept) {
            Some(V2Format::Protobuf) => (200, V2Protobuf::CONTENT_TYPE, rkube_openapi::v2_protobuf().bytes().to_vec()),
            Some(V2Format::Json) => (200, "application/json", rkube_openapi::v2_document().bytes().to_vec()),
            None => (406, "text/plain", Vec::new()),
        },
        _ => {
            if let Some(doc) = path.strip_prefix("/openapi/v3/").and_then(rkube_openapi::v3_group_version_document) {
                return (200, "application/json", doc.bytes().to_vec());
            }
            if let Some((g, v)) = path.strip_prefix("/apis/").and_then(|p| p.split_once('/'))
                && !v.contains('/')
                && BUILTIN.iter().any(|r| r.group == g && r.version == v)
            {
                return ok(resource_list(g, v));
            }
            (
                404,
                "application/json",
                br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.to_vec(),
            )
        }
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let (mut length, mut accept) = (0, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("accept") {
                accept = Some(v.trim().to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let entry = match method.as_str() {
        "PATCH" => format!("{method} {target} {}", String::from_utf8_lossy(&body)),
        // Which form of the v2 document was asked for.
        _ if target.starts_with("/openapi/v2") => {
            format!("{method} {target} accept={}", accept.as_deref().unwrap_or(""))
        }
        _ => format!("{method} {target}"),
    };
    log.lock().expect("log").push(entry);
    let (status, content_type, payload) = answer(&method, &target, accept.as_deref(), &body);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(&payload)?;
    stream.flush()
}

/// Starts the server; returns its port and the request log.
fn start() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = shared.clone();
            thread::spawn(move || {
                let _ = serve(stream, &log);
            });
        }
    });
    (port, log)
}

/// Runs kubectl with a kubeconfig for the server and a private cache; returns (success, stdout, stderr).
fn run(kubectl: &Path, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(kubectl)
        .args(args)
        .arg(format!("--kubeconfig={}", dir.join("kubeconfig").display()))
        .arg(format!("--cache-dir={}", dir.join("cache").display()))
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kubectl {args:?} took over 60s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kubectl_127_reads_the_v2_protobuf() {
    let Some(kubectl) = kubectl() else {
        eprintln!("note: {DEFAULT_KUBECTL} not found; skipping the kubectl 1.27 test");
        return;
    };
    let (port, log) = start();
    let dir = std::env::temp_dir().join(format!("rkube-openapi-kubectl127-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\n\
         contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\n\
         current-context: t\nusers:\n- name: u\n  user: {{}}\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).expect("kubeconfig");
    let v2_requests = |log: &Mutex<Vec<String>>| -> Vec<String> {
        log.lock().expect("log").iter().filter(|r| r.starts_with("GET /openapi/v2")).cloned().collect()
    };

    // explain from the v2 document: the Pod's spec with its fields, types and descriptions.
    let (ok, out, err) = run(&kubectl, &dir, &["explain", "pods.spec", "--output=plaintext-openapiv2"]);
    assert!(ok, "explain failed: {err}\n{out}");
    assert!(out.contains("KIND:     Pod") && out.contains("RESOURCE: spec <Object>"), "{out}");
    assert!(out.contains("containers\t<[]Object> -required-") || out.contains("containers\t<[]Object>"), "{out}");
    assert!(out.contains("restartPolicy\t<string>"), "{out}");
    let fetched = v2_requests(&log);
    assert!(
        fetched.iter().any(|r| r.contains("accept=application/com.github.proto-openapi.spec.v2@v1.0+protobuf")),
        "kubectl asked for the protobuf: {fetched:?}"
    );
    let (ok, out, err) = run(&kubectl, &dir, &["explain", "deployments.spec.strategy", "--output=plaintext-openapiv2"]);
    assert!(ok, "explain failed: {err}\n{out}");
    assert!(out.contains("KIND:     Deployment") && out.contains("VERSION:  apps/v1"), "{out}");
    assert!(out.contains("rollingUpdate\t<Object>"), "{out}");

    // create --validate=strict: kubectl 1.27 looks for fieldValidation among the PATCH operation's
    // parameters in the v2 document; finding it, it leaves validation to the server.
    std::fs::write(dir.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n")
        .expect("yaml");
    let file = dir.join("cm.yaml").display().to_string();
    let (ok, out, err) = run(&kubectl, &dir, &["create", "-f", &file, "--validate=strict"]);
    assert!(ok, "create failed: {err}\n{out}");
    assert!(out.contains("configmap/c created"), "{out}");
    let requests = log.lock().expect("log").clone();
    let post = requests.iter().find(|r| r.starts_with("POST ")).expect("a POST");
    assert!(post.contains("fieldValidation=Strict"), "{post}; requests: {requests:?}");

    // Client-side apply: the patch is computed with the v2 document's patch metadata (containers merge
    // by name: `$setElementOrder/containers`), and nothing is warned about the schema.
    let yaml = serde_json::to_string(&deployment("nginx:2")).expect("json");
    std::fs::write(dir.join("deploy.json"), yaml).expect("file");
    let file = dir.join("deploy.json").display().to_string();
    let (ok, out, err) = run(&kubectl, &dir, &["apply", "-f", &file]);
    assert!(ok, "apply failed: {err}\n{out}");
    assert!(!err.contains("warning") && !err.contains("error"), "{err}");
    let requests = log.lock().expect("log").clone();
    let patch = requests.iter().find(|r| r.starts_with("PATCH ")).expect("a PATCH");
    assert!(patch.contains("$setElementOrder/containers"), "{patch}");
    assert!(patch.contains(r#""image":"nginx:2""#) && !patch.contains(r#""image":"busybox""#), "{patch}");
    let fetched = v2_requests(&log);
    assert!(fetched.iter().all(|r| r.contains("protobuf")), "only the protobuf is asked for: {fetched:?}");

    // Again without v3, as against a server that has only v2: kubectl 1.27 finds fieldValidation among
    // the v2 document's PATCH parameters (else it would validate client-side and send no fieldValidation)
    // and computes the apply patch without complaint.
    V3_SERVED.store(false, Ordering::SeqCst);
    let _ = std::fs::remove_dir_all(dir.join("cache"));
    log.lock().expect("log").clear();
    let file = dir.join("cm.yaml").display().to_string();
    let (ok, out, err) = run(&kubectl, &dir, &["create", "-f", &file, "--validate=strict"]);
    assert!(ok, "create failed: {err}\n{out}");
    let requests = log.lock().expect("log").clone();
    assert!(requests.iter().any(|r| r.starts_with("GET /openapi/v2")), "{requests:?}");
    let post = requests.iter().find(|r| r.starts_with("POST ")).expect("a POST");
    assert!(post.contains("fieldValidation=Strict"), "{post}; requests: {requests:?}");
    let file = dir.join("deploy.json").display().to_string();
    let (ok, out, err) = run(&kubectl, &dir, &["apply", "-f", &file]);
    assert!(ok, "apply failed: {err}\n{out}");
    assert!(!err.contains("warning") && !err.contains("error"), "{err}");
    let requests = log.lock().expect("log").clone();
    let patch = requests.iter().find(|r| r.starts_with("PATCH ")).expect("a PATCH");
    assert!(patch.contains("$setElementOrder/containers"), "{patch}");
    V3_SERVED.store(true, Ordering::SeqCst);
    let _ = std::fs::remove_dir_all(&dir);
}
