//! The admin kubeconfig: its structure, its mode, and real kubectl reading it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rkube_pki::{Kubeconfig, Pki, PkiConfig};

const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

fn write_admin(dir: &Path) -> (Pki, std::path::PathBuf) {
    let pki = Pki::load_or_create(&PkiConfig::new(dir.join("server/tls"), "node-a")).expect("pki");
    let path = dir.join("kubeconfig.yaml");
    pki.write_admin_kubeconfig(&path, "https://127.0.0.1:6443").expect("write");
    (pki, path)
}

#[test]
fn admin_kubeconfig_has_the_expected_structure() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pki, path) = write_admin(tmp.path());
    assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);

    let text = std::fs::read_to_string(&path).expect("read");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["kind"], "Config");
    assert_eq!(doc["current-context"], "rkube");
    assert_eq!(doc["clusters"][0]["name"], "rkube");
    assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
    assert_eq!(doc["contexts"][0]["context"]["cluster"], "rkube");
    assert_eq!(doc["contexts"][0]["context"]["user"], doc["users"][0]["name"]);

    let decode = |v: &serde_yaml::Value| {
        String::from_utf8(STANDARD.decode(v.as_str().expect("string")).expect("base64")).expect("utf8")
    };
    assert_eq!(decode(&doc["clusters"][0]["cluster"]["certificate-authority-data"]), pki.ca_cert_pem());
    assert_eq!(decode(&doc["users"][0]["user"]["client-certificate-data"]), pki.admin().cert_pem());
    assert_eq!(decode(&doc["users"][0]["user"]["client-key-data"]), pki.admin().key_pem());

    let typed = Kubeconfig::from_yaml(&text).expect("typed parse");
    assert_eq!(typed, pki.admin_kubeconfig("https://127.0.0.1:6443"));
}

#[test]
fn token_kubeconfig_parses() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(&PkiConfig::new(tmp.path().join("tls"), "node-a")).expect("pki");
    let kc = pki.token_kubeconfig("https://10.0.0.1:6443", "bootstrap", "abcdef.0123456789abcdef");
    let doc: serde_yaml::Value = serde_yaml::from_str(&kc.to_yaml().expect("yaml")).expect("parse");
    assert_eq!(doc["users"][0]["user"]["token"], "abcdef.0123456789abcdef");
    assert!(doc["users"][0]["user"].get("client-key-data").is_none());
}

#[test]
fn real_kubectl_reads_the_admin_kubeconfig() {
    if !Path::new(KUBECTL).exists() {
        println!("note: {KUBECTL} is absent; skipping the kubectl check");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pki, path) = write_admin(tmp.path());
    let out = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&path)
        .args(["config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-certificate-data}"])
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&out.stderr));
    let cert = STANDARD.decode(out.stdout.trim_ascii()).expect("base64 from kubectl");
    assert_eq!(String::from_utf8(cert).expect("utf8"), pki.admin().cert_pem());

    let out = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&path)
        .args(["config", "view", "-o", "jsonpath={.current-context} {.clusters[0].cluster.server}"])
        .output()
        .expect("run kubectl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rkube https://127.0.0.1:6443");
}
