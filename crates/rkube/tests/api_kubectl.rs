//! The API server against real kubectl (1.33 and 1.27): the everyday flows of the acceptance list that
//! rkube serves today. Each test starts its own `rkube server` (control plane only).

mod common;

use common::Server;

const VERSIONS: &[&str] = &["1.33", "1.27"];

#[test]
fn version_and_discovery() {
    let s = Server::start();
    for v in VERSIONS {
        let out = s.ok(v, &["version", "-o", "json"]);
        assert!(out.contains("\"serverVersion\""), "{out}");
        assert!(out.contains("\"minor\": \"33\""), "{out}");
        let res = s.ok(v, &["api-resources"]);
        for expected in ["pods", "deployments", "configmaps", "namespaces", "customresourcedefinitions", "leases"] {
            assert!(res.lines().any(|l| l.starts_with(expected)), "{v}: api-resources lacks {expected}:\n{res}");
        }
        assert!(res.lines().any(|l| l.starts_with("pods") && l.contains(" po ")), "short names: {res}");
    }
    // Aggregated discovery (v2 for 1.30+, v2beta1 for 1.27-1.29): two requests, no per-group documents.
    for v in ["1.29", "1.33"] {
        let out =
            s.kubectl(v, &["api-resources", "-v=6", "--cache-dir", &format!("{}/cache-{v}", s.dir.path().display())]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("/apis?timeout"), "{log}");
        assert!(!log.contains("/apis/apps/v1?timeout"), "kubectl {v} fell back to legacy discovery:\n{log}");
    }
}

#[test]
fn namespaces_and_configmaps_round_trip() {
    let s = Server::start();
    for v in VERSIONS {
        let ns = format!("ns-{}", v.replace('.', "-"));
        s.ok(v, &["create", "namespace", &ns]);
        let out = s.ok(v, &["get", "namespaces"]);
        assert!(out.contains(&ns) && out.contains("Active"), "{out}");
        s.ok(v, &["-n", &ns, "create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=2"]);
        let yaml = s.ok(v, &["-n", &ns, "get", "configmap", "cm1", "-o", "yaml"]);
        assert!(yaml.contains("a: \"1\"") && yaml.contains("resourceVersion:") && yaml.contains("uid:"), "{yaml}");
        let name = s.ok(v, &["-n", &ns, "get", "cm", "-l", "!none", "-o", "name"]);
        assert!(name.lines().any(|l| l == "configmap/cm1"), "{name}");
        let jp = s.ok(v, &["-n", &ns, "get", "cm", "cm1", "-o", "jsonpath={.data.b}"]);
        assert_eq!(jp, "2");
        let table = s.ok(v, &["-n", &ns, "get", "cm"]);
        assert!(table.starts_with("NAME") && table.contains("DATA") && table.contains("cm1"), "{table}");
        let cc = s.ok(v, &["-n", &ns, "get", "cm", "-o", "custom-columns=N:.metadata.name,A:.data.a"]);
        assert!(cc.contains("cm1") && cc.contains('1'), "{cc}");
        let err = s.fails(v, &["-n", &ns, "create", "configmap", "cm1", "--from-literal=a=1"]);
        assert!(err.contains("already exists"), "{err}");
        s.ok(v, &["-n", &ns, "delete", "configmap", "cm1"]);
        let err = s.fails(v, &["-n", &ns, "get", "configmap", "cm1"]);
        assert!(err.contains("configmaps \"cm1\" not found"), "{err}");
    }
}

#[test]
fn label_annotate_and_patch() {
    let s = Server::start();
    let v = "1.33";
    s.ok(v, &["create", "configmap", "p", "--from-literal=k=v"]);
    s.ok(v, &["label", "configmap", "p", "tier=web"]);
    s.ok(v, &["annotate", "configmap", "p", "note=hello"]);
    let out = s.ok(v, &["get", "cm", "-l", "tier=web", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/p");
    let out = s.ok(v, &["get", "cm", "-l", "tier!=web", "-o", "name"]);
    assert!(!out.contains("configmap/p"), "{out}");
    s.ok(v, &["patch", "configmap", "p", "--type=merge", "-p", r#"{"data":{"m":"1"}}"#]);
    s.ok(v, &["patch", "configmap", "p", "--type=json", "-p", r#"[{"op":"add","path":"/data/j","value":"2"}]"#]);
    s.ok(v, &["patch", "configmap", "p", "-p", r#"{"data":{"s":"3"}}"#]);
    let data = s.ok(v, &["get", "cm", "p", "-o", "jsonpath={.data}"]);
    for k in ["\"m\":\"1\"", "\"j\":\"2\"", "\"s\":\"3\"", "\"k\":\"v\""] {
        assert!(data.contains(k), "{data} lacks {k}");
    }
    let fs = s.ok(v, &["get", "cm", "--field-selector", "metadata.name=p", "-o", "name"]);
    assert_eq!(fs.trim(), "configmap/p");
    s.ok(v, &["label", "configmap", "p", "tier-"]);
    assert!(!s.ok(v, &["get", "cm", "p", "--show-labels"]).contains("tier=web"));
}

#[test]
fn chunked_lists_page_through_everything() {
    let s = Server::start();
    let v = "1.33";
    for i in 0..25 {
        s.ok("1.27", &["create", "configmap", &format!("c{i:02}")]);
    }
    let out = s.ok(v, &["get", "cm", "--chunk-size", "4", "-o", "name"]);
    let names: Vec<&str> = out.lines().filter(|l| l.starts_with("configmap/c")).collect();
    assert_eq!(names.len(), 25, "{out}");
}

#[test]
fn watch_sees_added_modified_deleted() {
    let s = Server::start();
    // Listed before the watch starts: once kubectl prints it, the watch follows from the list's revision.
    s.ok("1.33", &["create", "configmap", "w0"]);
    let mut child = std::process::Command::new(common::kubectl_path("1.33").expect("kubectl 1.33"))
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args([
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name,V:.object.data.v",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    let stdout = child.stdout.take().expect("kubectl stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    let mut read_until = |want: &dyn Fn(&str) -> bool, what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                    if want(&line) {
                        return;
                    }
                }
                Err(_) => panic!("kubectl's watch did not print {what} within 30 s:\n{text}"),
            }
        }
    };
    let named = |name: &'static str, event: &'static str| {
        move |l: &str| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&event) && cols.get(1) == Some(&name)
        }
    };
    read_until(&named("w0", "ADDED"), "the listed w0");
    s.ok("1.33", &["create", "configmap", "w", "--from-literal=v=1"]);
    s.ok("1.33", &["patch", "configmap", "w", "--type=merge", "-p", r#"{"data":{"v":"2"}}"#]);
    s.ok("1.33", &["delete", "configmap", "w"]);
    read_until(&named("w", "DELETED"), "w's deletion");
    let _ = child.kill();
    let _ = child.wait();
    let events: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.get(1) == Some(&"w"))
        .map(|cols| format!("{} {}", cols[0], cols.get(2).unwrap_or(&"")))
        .collect();
    assert_eq!(events, vec!["ADDED 1", "MODIFIED 2", "DELETED 2"], "watch output:\n{text}");
}

#[test]
fn no_credentials_is_401_and_unknown_resource_is_404() {
    let s = Server::start();
    let empty = s.dir.path().join("anon.yaml");
    let cfg = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    // Same server and CA, no client certificate: a bearer token the server does not know instead
    // (with no credentials at all kubectl would prompt for a password).
    let anon: String = cfg
        .lines()
        .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
        .map(|l| if l == "  user:" { "  user: {token: not-a-valid-token}" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&empty, anon).expect("write");
    let out = common::kubectl_with("1.33", &empty, &["get", "configmaps"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unauthorized") || err.contains("provide credentials"), "{err}");
    let err = s.fails("1.33", &["get", "nosuchthings"]);
    assert!(err.contains("the server doesn't have a resource type \"nosuchthings\""), "{err}");
}
