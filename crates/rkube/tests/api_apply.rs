//! `kubectl apply` in both forms against rkube: client-side three-way merge (last-applied annotation and a
//! strategic merge patch), server-side apply with managedFields and conflicts between field managers,
//! `kubectl diff`, and strict field validation naming an unknown field.

mod common;

use common::Server;

fn deployment(label: &str, replicas: u32, image: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    tier: {label}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
      - name: sidecar
        image: busybox
"#
    )
}

#[test]
fn client_side_apply_three_way_merge() {
    let s = Server::start();
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], &deployment("a", 2, "nginx:1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Someone else changes a field kubectl apply does not manage: it survives the next apply.
    s.ok("1.33", &["annotate", "deploy", "web", "owner=ops"]);
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], &deployment("b", 2, "nginx:2"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[1].name}"]);
    assert_eq!(got, "b ops nginx:2 sidecar");
    let out = s.kubectl_stdin("1.27", &["apply", "-f", "-"], &deployment("c", 3, "nginx:3"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier} {.spec.replicas}"]),
        "c 3"
    );
}

#[test]
fn server_side_apply_conflicts_and_force() {
    let s = Server::start();
    let out = s.kubectl_stdin(
        "1.33",
        &["apply", "--server-side", "--field-manager=team-a", "-f", "-"],
        &deployment("a", 2, "nginx:1"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mf = s.ok(
        "1.33",
        &[
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}",
        ],
    );
    assert_eq!(mf, "team-a Apply");
    let out = s.kubectl_stdin(
        "1.33",
        &["apply", "--server-side", "--field-manager=team-b", "-f", "-"],
        &deployment("a", 5, "nginx:1"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflict with \"team-a\"") && err.contains(".spec.replicas"), "{err}");
    assert_eq!(
        s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "2",
        "a conflicting apply changes nothing"
    );
    let out = s.kubectl_stdin(
        "1.33",
        &["apply", "--server-side", "--field-manager=team-b", "--force-conflicts", "-f", "-"],
        &deployment("a", 5, "nginx:1"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "5");
    // kubectl scale is an Update by another manager: it takes spec.replicas over.
    s.ok("1.33", &["scale", "deploy", "web", "--replicas=1"]);
    let managers = s.ok(
        "1.33",
        &["get", "deploy", "web", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}"],
    );
    assert!(managers.contains("team-a") && managers.contains("team-b"), "{managers}");
}

#[test]
fn diff_and_strict_validation() {
    let s = Server::start();
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], &deployment("a", 2, "nginx:1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.kubectl_stdin("1.33", &["diff", "-f", "-"], &deployment("a", 4, "nginx:1"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kubectl diff exits 1 when there are differences: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("-  replicas: 2") && text.contains("+  replicas: 4"), "{text}");
    assert_eq!(s.ok("1.33", &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "2", "diff must not write");

    let bad = deployment("a", 2, "nginx:1").replace("replicas: 2", "replicas: 2\n  replicass: 3");
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field \"spec.replicass\""), "{err}");
}
