//! More of the everyday kubectl flows against rkube: `explain`, output formats, `edit` with a scripted
//! EDITOR, `wait --for=delete`, and `describe` of each built-in kind.

mod common;

use common::Server;

#[test]
fn explain_reads_the_openapi() {
    let s = Server::start();
    for v in ["1.33", "1.27"] {
        let out = s.ok(v, &["explain", "pods.spec"]);
        assert!(out.contains("KIND:") && out.contains("Pod") && out.contains("containers"), "{v}: {out}");
    }
    let out = s.ok("1.33", &["explain", "deployments.spec.strategy.rollingUpdate.maxSurge"]);
    assert!(out.contains("maxSurge"), "{out}");
}

#[test]
fn output_formats() {
    let s = Server::start();
    s.ok("1.33", &["create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]);
    let json = s.ok("1.33", &["get", "deploy", "web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(v["spec"]["strategy"]["type"], "RollingUpdate", "upstream's defaults are applied");
    let wide = s.ok("1.33", &["get", "deploy", "-o", "wide"]);
    let header = wide.lines().next().unwrap_or_default();
    for col in ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"] {
        assert!(header.contains(col), "{wide}");
    }
    assert!(wide.contains("nginx:1.25") && wide.contains("app=web"), "{wide}");
    let svc = s.ok("1.33", &["get", "svc", "kubernetes"]);
    assert!(svc.contains("CLUSTER-IP") && svc.contains("10.254.0.1") && svc.contains("443/TCP"), "{svc}");
}

#[test]
fn edit_with_a_scripted_editor() {
    let s = Server::start();
    s.ok("1.33", &["create", "configmap", "ed", "--from-literal=color=blue"]);
    let editor = s.dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n").expect("write editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    for v in ["1.33", "1.27"] {
        let out = std::process::Command::new(common::kubectl_path(v).expect("kubectl"))
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .args(["edit", "configmap", "ed"])
            .env("EDITOR", &editor)
            .env("KUBE_EDITOR", &editor)
            .output()
            .expect("kubectl edit");
        assert!(out.status.success(), "{v}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(s.ok("1.33", &["get", "cm", "ed", "-o", "jsonpath={.data.color}"]), "green");
        s.ok("1.33", &["patch", "cm", "ed", "--type=merge", "-p", r#"{"data":{"color":"blue"}}"#]);
    }
}

#[test]
fn wait_for_delete_and_for_a_condition() {
    let s = Server::start();
    s.ok("1.33", &["create", "configmap", "gone-soon"]);
    let waiter = std::process::Command::new(common::kubectl_path("1.33").expect("kubectl"))
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["wait", "--for=delete", "configmap/gone-soon", "--timeout=30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    std::thread::sleep(std::time::Duration::from_secs(1));
    s.ok("1.33", &["delete", "configmap", "gone-soon"]);
    let out = waiter.wait_with_output().expect("wait output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A condition set through the status subresource ends a wait on it.
    s.ok("1.33", &["create", "deployment", "cond", "--image=busybox"]);
    let waiter = std::process::Command::new(common::kubectl_path("1.33").expect("kubectl"))
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["wait", "--for=condition=Available", "deployment/cond", "--timeout=30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    std::thread::sleep(std::time::Duration::from_secs(1));
    s.ok("1.33", &["patch", "deployment", "cond", "--subresource=status", "--type=merge", "-p", r#"{"status":{"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"ok"}]}}"#]);
    let out = waiter.wait_with_output().expect("wait output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn describe_each_kind() {
    let s = Server::start();
    let v = "1.33";
    let _ = s.kubectl(v, &["create", "serviceaccount", "default"]);
    s.ok(v, &["create", "configmap", "cm", "--from-literal=a=1"]);
    s.ok(v, &["create", "secret", "generic", "sec", "--from-literal=a=1"]);
    s.ok(v, &["create", "deployment", "dep", "--image=busybox"]);
    s.ok(v, &["create", "service", "clusterip", "svc", "--tcp=80"]);
    s.ok(v, &["create", "job", "job", "--image=busybox"]);
    s.ok(v, &["create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *"]);
    s.ok(v, &["create", "quota", "rq", "--hard=pods=10"]);
    s.ok(v, &["create", "role", "r", "--verb=get", "--resource=pods"]);
    s.ok(v, &["create", "rolebinding", "rb", "--role=r", "--user=u"]);
    s.ok(v, &["create", "clusterrole", "cr", "--verb=get", "--resource=nodes"]);
    s.ok(v, &["create", "priorityclass", "pc", "--value=1000"]);
    s.ok(v, &["create", "poddisruptionbudget", "pdb", "--selector=app=x", "--min-available=1"]);
    s.ok(v, &["run", "pod", "--image=busybox"]);
    for (kind, name) in [
        ("configmap", "cm"),
        ("secret", "sec"),
        ("deployment", "dep"),
        ("service", "svc"),
        ("job", "job"),
        ("cronjob", "cj"),
        ("resourcequota", "rq"),
        ("role", "r"),
        ("rolebinding", "rb"),
        ("clusterrole", "cr"),
        ("priorityclass", "pc"),
        ("poddisruptionbudget", "pdb"),
        ("pod", "pod"),
        ("namespace", "default"),
        ("serviceaccount", "default"),
        ("endpoints", "kubernetes"),
    ] {
        let out = s.ok(v, &["describe", kind, name]);
        assert!(out.contains(name), "describe {kind}: {out}");
        assert!(out.lines().next().is_some_and(|l| l.starts_with("Name:")), "describe {kind}: {out}");
    }
}

#[test]
fn health_and_metrics_endpoints() {
    let s = Server::start();
    assert_eq!(s.ok("1.33", &["get", "--raw", "/healthz"]), "ok");
    assert_eq!(s.ok("1.33", &["get", "--raw", "/livez"]), "ok");
    let ready = s.ok("1.33", &["get", "--raw", "/readyz?verbose"]);
    assert!(ready.contains("[+]etcd ok") && ready.contains("readyz check passed"), "{ready}");
    assert_eq!(s.ok("1.33", &["get", "--raw", "/readyz/etcd"]), "ok");
    let metrics = s.ok("1.33", &["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("apiserver_request_total{") && metrics.contains("apiserver_request_duration_seconds_bucket"),
        "{metrics}"
    );
}
