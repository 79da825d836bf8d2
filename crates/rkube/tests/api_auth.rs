//! Authentication and authorization through kubectl: `auth can-i` (SelfSubjectAccessReview, protobuf from
//! kubectl 1.33) as admin, as an impersonated service account and with a real service-account token from
//! `kubectl create token`; `auth whoami`; a token for a deleted service account stops working.

mod common;

use common::Server;

fn token_kubeconfig(s: &Server, token: &str, name: &str) -> std::path::PathBuf {
    let cfg = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let text: String = cfg
        .lines()
        .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
        .map(|l| if l == "  user:" { format!("  user: {{token: {token}}}") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    let path = s.dir.path().join(name);
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[test]
fn can_i_whoami_and_service_account_tokens() {
    let s = Server::start();
    for v in ["1.33", "1.27"] {
        assert_eq!(s.ok(v, &["auth", "can-i", "create", "pods"]).trim(), "yes");
        assert_eq!(s.ok(v, &["auth", "can-i", "*", "*"]).trim(), "yes");
    }
    s.ok("1.33", &["create", "serviceaccount", "robot"]);
    let out = s.kubectl("1.33", &["auth", "can-i", "list", "pods", "--as=system:serviceaccount:default:robot"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    s.ok("1.33", &["create", "rolebinding", "robot-view", "--clusterrole=view", "--serviceaccount=default:robot"]);
    assert_eq!(
        s.ok("1.33", &["auth", "can-i", "list", "pods", "--as=system:serviceaccount:default:robot"]).trim(),
        "yes"
    );
    let out = s.kubectl("1.33", &["auth", "can-i", "delete", "pods", "--as=system:serviceaccount:default:robot"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");

    let whoami = s.ok("1.33", &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(whoami, "system:admin");

    let token = s.ok("1.33", &["create", "token", "robot", "--duration=20m"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let kc = token_kubeconfig(&s, token, "robot.yaml");
    let me = common::kubectl_with("1.33", &kc, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], None);
    assert_eq!(
        String::from_utf8_lossy(&me.stdout),
        "system:serviceaccount:default:robot",
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
    let pods = common::kubectl_with("1.33", &kc, &["get", "pods"], None);
    assert!(pods.status.success(), "view allows listing pods: {}", String::from_utf8_lossy(&pods.stderr));
    let denied = common::kubectl_with("1.33", &kc, &["get", "secrets"], None);
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains(
            "secrets is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"secrets\""
        ),
        "{err}"
    );

    let err = s.fails("1.33", &["create", "token", "robot", "--duration=1m"]);
    assert!(err.contains("may not specify a duration less than 10 minutes"), "{err}");

    // The token is bound to the ServiceAccount: deleting it revokes the token.
    s.ok("1.33", &["delete", "serviceaccount", "robot"]);
    let gone = common::kubectl_with("1.33", &kc, &["get", "pods"], None);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn pods_get_their_service_account_token_volume_and_default_tolerations() {
    let s = Server::start();
    s.ok("1.33", &["create", "serviceaccount", "builder"]);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"serviceAccountName":"builder","containers":[{"name":"c","image":"busybox"}]}}"#;
    let out = s.kubectl_stdin("1.33", &["create", "-f", "-"], pod);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mount = s.ok("1.33", &["get", "pod", "p", "-o", "jsonpath={.spec.containers[0].volumeMounts[0].mountPath}"]);
    assert_eq!(mount, "/var/run/secrets/kubernetes.io/serviceaccount");
    let vol = s.ok(
        "1.33",
        &[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.volumes[0].name} {.spec.volumes[0].projected.sources[0].serviceAccountToken.path}",
        ],
    );
    assert!(vol.starts_with("kube-api-access-") && vol.ends_with(" token"), "{vol}");
    let tol = s.ok("1.33", &["get", "pod", "p", "-o", "jsonpath={.spec.tolerations[*].key}"]);
    assert_eq!(tol, "node.kubernetes.io/not-ready node.kubernetes.io/unreachable");
    let orphan = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},"spec":{"serviceAccountName":"nobody","containers":[{"name":"c","image":"busybox"}]}}"#;
    let out = s.kubectl_stdin("1.33", &["create", "-f", "-"], orphan);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error looking up service account default/nobody: serviceaccount \"nobody\" not found"),
        "{err}"
    );
}

#[test]
fn limit_ranges_and_resource_quotas_admit_as_upstream() {
    let s = Server::start();
    s.ok("1.33", &["create", "namespace", "q"]);
    // The ServiceAccount controller creates `default`; creating it here too keeps this test independent of it.
    let _ = s.kubectl("1.33", &["-n", "q", "create", "serviceaccount", "default"]);
    let lr = r#"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"lr"},"spec":{"limits":[{"type":"Container","default":{"cpu":"500m","memory":"128Mi"},"defaultRequest":{"cpu":"100m","memory":"64Mi"},"max":{"cpu":"1"}}]}}"#;
    assert!(s.kubectl_stdin("1.33", &["-n", "q", "create", "-f", "-"], lr).status.success());
    let pod = |name: &str, cpu: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"busybox","resources":{{"limits":{{"cpu":"{cpu}"}}}}}}]}}}}"#
        )
    };
    let out = s.kubectl_stdin("1.33", &["-n", "q", "create", "-f", "-"], &pod("big", "2"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"), "{err}");
    let out = s.kubectl_stdin("1.33", &["-n", "q", "create", "-f", "-"], &pod("ok", "200m"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let res = s.ok(
        "1.33",
        &[
            "-n",
            "q",
            "get",
            "pod",
            "ok",
            "-o",
            "jsonpath={.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.limits.memory}",
        ],
    );
    assert_eq!(res, "64Mi 128Mi", "LimitRange defaults applied");

    s.ok("1.33", &["-n", "q", "create", "quota", "rq", "--hard=pods=1,configmaps=2"]);
    let out = s.kubectl_stdin("1.33", &["-n", "q", "create", "-f", "-"], &pod("second", "200m"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeded quota: rq, requested: pods=1, used: pods=1, limited: pods=1"), "{err}");
    // kube-root-ca.crt (published by the controllers into every namespace) counts against configmaps=2: wait
    // for it, so that it cannot arrive between the count and the refused create.
    common::eventually(&s, 30, "kube-root-ca.crt in q", || {
        s.kubectl("1.33", &["-n", "q", "get", "configmap", "kube-root-ca.crt"]).status.success()
    });
    s.ok("1.33", &["-n", "q", "create", "configmap", "c1"]);
    let err = s.fails("1.33", &["-n", "q", "create", "configmap", "one-too-many"]);
    assert!(
        err.contains("exceeded quota: rq, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"),
        "{err}"
    );
}
