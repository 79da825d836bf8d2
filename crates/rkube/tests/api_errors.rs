//! Bad input gets upstream's status codes and messages, and changes nothing stored:
//! 400 bad JSON, 413 too large, 422 invalid, 403 without rights, 410 for a compacted watch.

mod common;

use common::Server;

fn write(dir: &std::path::Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn malformed_oversized_and_invalid_bodies() {
    let s = Server::start();
    s.ok("1.33", &["create", "configmap", "keep", "--from-literal=a=1"]);
    let before = s.ok("1.33", &["get", "cm", "keep", "-o", "jsonpath={.metadata.resourceVersion}"]);

    let bad = write(s.dir.path(), "bad.json", b"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", ");
    let err = s.fails("1.33", &["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", &bad]);
    assert!(err.contains("BadRequest") || err.contains("error decoding JSON body"), "{err}");

    let mut big =
        b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{\"x\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024 + 10));
    big.extend(b"\"}}");
    let big = write(s.dir.path(), "big.json", &big);
    let err = s.fails("1.33", &["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", &big]);
    assert!(err.contains("Request entity too large") || err.contains("RequestEntityTooLarge"), "{err}");

    let err = s.fails("1.33", &["create", "configmap", "Bad_Name"]);
    assert!(err.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{err}");
    let err = s.fails("1.27", &["label", "configmap", "keep", "bad key!=x"]);
    assert!(!err.is_empty());

    let err = s.fails("1.33", &["create", "namespace", "default"]);
    assert!(err.contains("namespaces \"default\" already exists"), "{err}");
    let err = s.fails("1.33", &["-n", "nowhere", "create", "configmap", "x"]);
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");

    let after = s.ok("1.33", &["get", "cm", "keep", "-o", "jsonpath={.metadata.resourceVersion}"]);
    assert_eq!(before, after, "refused requests must not write");
    let names = s.ok("1.33", &["get", "cm", "-o", "name"]);
    assert!(!names.contains("configmap/big") && !names.contains("Bad_Name"), "{names}");
}

#[test]
fn a_user_without_rights_gets_upstreams_403() {
    let s = Server::start();
    let mut cfg = rkube_pki::PkiConfig::new(s.dir.path().join("server").join("tls"), "test-node");
    cfg.node_ips = vec!["127.0.0.1".parse().expect("ip")];
    let pki = rkube_pki::Pki::load_or_create(&cfg).expect("the server's PKI");
    let bob =
        pki.issue_client_cert("bob", &["developers"], std::time::Duration::from_secs(3600)).expect("bob's certificate");
    let kc = rkube_pki::Kubeconfig::with_client_cert(&s.url(), pki.ca_cert_pem(), "bob", bob.cert_pem(), bob.key_pem());
    let path = s.dir.path().join("bob.yaml");
    kc.write(&path).expect("kubeconfig");
    let out = common::kubectl_with("1.33", &path, &["get", "configmaps"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    // Discovery and whoami-style reads stay open to every authenticated user (system:discovery).
    let out = common::kubectl_with("1.33", &path, &["api-resources"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A RoleBinding to `view` grants reads in that namespace only.
    s.ok("1.33", &["create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", "default"]);
    let out = common::kubectl_with("1.33", &path, &["get", "configmaps", "-n", "default"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = common::kubectl_with("1.33", &path, &["create", "configmap", "x", "-n", "default"], None);
    assert!(!out.status.success());
    let out = common::kubectl_with("1.33", &path, &["get", "configmaps", "-n", "kube-system"], None);
    assert!(!out.status.success());
}

#[test]
fn watching_from_a_compacted_revision_is_410_expired() {
    let s = Server::start_with(&["--compaction-keep-revisions", "5", "--etcd-compaction-interval", "1s"]);
    for i in 0..30 {
        s.ok("1.27", &["create", "configmap", &format!("c{i}")]);
    }
    // The compactor runs every second; on a loaded machine its first pass may come later than that.
    common::eventually(&s, 30, "a watch from revision 2 to end with 410 Expired", || {
        let out = s.kubectl(
            "1.33",
            &["get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2&timeoutSeconds=1"],
        );
        let last = String::from_utf8_lossy(&out.stdout);
        last.contains("\"type\":\"ERROR\"") && last.contains("\"code\":410") && last.contains("\"reason\":\"Expired\"")
    });
    let err = s.fails(
        "1.33",
        &["get", "--raw", "/api/v1/namespaces/default/configmaps?resourceVersion=2&resourceVersionMatch=Exact"],
    );
    assert!(err.contains("too old resource version") || err.contains("Expired") || err.contains("Gone"), "{err}");
}
