//! CustomResourceDefinitions: a CRD becomes Established, its resource appears in discovery, its objects
//! are served through kubectl (create, get, patch, delete, status subresource), and deleting the CRD
//! removes its objects.

mod common;

use common::Server;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, blue], default: red}
          status:
            type: object
            properties:
              phase: {type: string}
              replicas: {type: integer}
"#;

const CT: &str = r#"
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
spec:
  cronSpec: "* * * * */5"
  replicas: 2
"#;

#[test]
fn crd_lifecycle_through_kubectl() {
    let s = Server::start();
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], CRD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok("1.33", &["wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=30s"]);
    let res = s.ok("1.33", &["api-resources", "--api-group=stable.example.com"]);
    assert!(res.contains("crontabs") && res.contains("ct") && res.contains("CronTab"), "{res}");

    for v in ["1.33", "1.27"] {
        let args: &[&str] = &["apply", "-f", "-"];
        let out = s.kubectl_stdin(v, args, CT);
        assert!(out.status.success(), "{v}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        s.ok("1.33", &["get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas} {.spec.color}"]),
        "2 red",
        "schema defaults apply"
    );
    // The CRD's schema is enforced: bounds, enums, unknown fields under strict validation.
    let err = s.fails("1.33", &["patch", "crontab", "my-cron", "--type=merge", "-p", r#"{"spec":{"replicas":11}}"#]);
    assert!(
        err.contains("spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
    let err = s.fails("1.33", &["patch", "crontab", "my-cron", "--type=merge", "-p", r#"{"spec":{"color":"pink"}}"#]);
    assert!(err.contains("spec.color: Unsupported value: \"pink\""), "{err}");
    let bad = CT.replace("replicas: 2", "replicas: 2\n  flavour: x").replace("my-cron", "other");
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], &bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.flavour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok("1.33", &["patch", "crontab", "my-cron", "--type=merge", "-p", r#"{"spec":{"replicas":3}}"#]);
    assert_eq!(
        s.ok("1.27", &["get", "crontabs.stable.example.com", "my-cron", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // The status subresource: the main resource ignores status, /status sets it.
    s.ok("1.33", &["patch", "crontab", "my-cron", "--type=merge", "-p", r#"{"status":{"phase":"Ignored"}}"#]);
    assert_eq!(s.ok("1.33", &["get", "ct", "my-cron", "-o", "jsonpath={.status.phase}"]), "");
    s.ok(
        "1.33",
        &[
            "patch",
            "crontab",
            "my-cron",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ],
    );
    assert_eq!(s.ok("1.33", &["get", "ct", "my-cron", "-o", "jsonpath={.status.phase}"]), "Running");
    // The scale subresource maps to the CRD's replica paths.
    for v in ["1.33", "1.27"] {
        s.ok(v, &["scale", "crontab", "my-cron", "--replicas=4"]);
        assert_eq!(s.ok(v, &["get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas}"]), "4");
        s.ok(v, &["scale", "crontab", "my-cron", "--replicas=3"]);
    }
    let table = s.ok("1.33", &["get", "ct"]);
    assert!(table.contains("my-cron"), "{table}");

    s.ok("1.33", &["delete", "crd", "crontabs.stable.example.com"]);
    let err = s.fails("1.33", &["get", "crontabs.stable.example.com"]);
    assert!(
        err.contains("doesn't have a resource type") || err.contains("NotFound") || err.contains("not find"),
        "{err}"
    );
    // Re-created, the CRD starts empty: its objects went with it.
    let out = s.kubectl_stdin("1.33", &["apply", "-f", "-"], CRD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok("1.33", &["wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=30s"]);
    let left = s.ok("1.33", &["get", "ct", "-A", "-o", "name"]);
    assert!(left.trim().is_empty(), "objects survived their CRD: {left}");
}
