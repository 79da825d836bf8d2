//! The TLS directory across starts: creation, byte-for-byte reuse, re-issue on new needs, and refusal to touch corrupt files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rkube_pki::{Pki, PkiConfig, PkiError, San};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn config(dir: &Path) -> PkiConfig {
    let mut cfg = PkiConfig::new(dir.join("server/tls"), "node-a");
    cfg.node_ips = vec!["192.168.50.10".parse().expect("ip"), "fd00::10".parse().expect("ip")];
    cfg
}

/// Every file in the directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn changed(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    after
        .iter()
        .filter(|(p, b)| before.get(*p) != Some(b))
        .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect()
}

fn verifies_as_client_of(ca: &CertificateDer<'static>, leaf: &CertificateDer<'static>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("add root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), rkube_pki::crypto_provider())
        .build()
        .expect("verifier");
    verifier.verify_client_cert(leaf, &[], UnixTime::now()).is_ok()
}

#[test]
fn fresh_pki_writes_every_file_with_the_right_modes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).expect("create");
    let p = pki.paths();
    assert_eq!(mode(&cfg.dir), 0o700);
    for key in [&p.ca_key, &p.serving_key, &p.admin_key, &p.kubelet_client_key, &p.service_account_key] {
        assert_eq!(mode(key), 0o600, "{}", key.display());
    }
    for cert in [&p.ca_cert, &p.serving_cert, &p.admin_cert, &p.kubelet_client_cert] {
        assert_eq!(mode(cert), 0o644, "{}", cert.display());
    }
    assert_eq!(snapshot(&cfg.dir).len(), 9, "no stray temporary files");
    assert_eq!(fs::read_to_string(&p.ca_cert).expect("read"), pki.ca_cert_pem());
    assert_eq!(fs::read_to_string(&p.service_account_key).expect("read"), pki.service_account_key_pem());

    let (_, ca) = X509Certificate::from_der(pki.ca_cert_der()).expect("parse ca");
    assert!(ca.is_ca());
    let cn = ca.subject().iter_common_name().next().expect("cn").as_str().expect("str").to_owned();
    assert!(cn.starts_with("rkube-ca@"), "{cn}");
    let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / (365 * 86_400);
    assert!(years >= 9, "CA valid for {years} years");
}

#[test]
fn second_load_reuses_the_exact_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let first = Pki::load_or_create(&cfg).expect("create");
    let before = snapshot(&cfg.dir);
    let second = Pki::load_or_create(&cfg).expect("reload");
    assert_eq!(snapshot(&cfg.dir), before);
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_eq!(first.serving().cert_pem(), second.serving().cert_pem());
    assert_eq!(first.admin().key_pem(), second.admin().key_pem());
    assert_eq!(first.service_account_key_pem(), second.service_account_key_pem());
}

#[test]
fn new_san_reissues_only_the_serving_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(tmp.path());
    let first = Pki::load_or_create(&cfg).expect("create");
    let before = snapshot(&cfg.dir);

    cfg.extra_sans.push("api.example.com".into());
    let second = Pki::load_or_create(&cfg).expect("reload with new SAN");
    let after = snapshot(&cfg.dir);
    assert_eq!(changed(&before, &after), ["serving-kube-apiserver.crt", "serving-kube-apiserver.key"]);
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert!(sans_of(second.serving().cert_der()).contains(&San::Dns("api.example.com".into())));

    // A new node IP is a new need too.
    cfg.node_ips.push("10.1.2.3".parse().expect("ip"));
    let third = Pki::load_or_create(&cfg).expect("reload with new IP");
    assert!(sans_of(third.serving().cert_der()).contains(&San::Ip("10.1.2.3".parse().expect("ip"))));
    assert_eq!(changed(&after, &snapshot(&cfg.dir)).len(), 2);

    // Asking for fewer names keeps the certificate: removing a SAN must not break clients using it.
    cfg.extra_sans.clear();
    let stable = snapshot(&cfg.dir);
    Pki::load_or_create(&cfg).expect("reload with fewer SANs");
    assert_eq!(snapshot(&cfg.dir), stable);
}

fn sans_of(der: &[u8]) -> Vec<San> {
    let (_, cert) = X509Certificate::from_der(der).expect("parse");
    let ext = cert.subject_alternative_name().expect("san ext").expect("has sans");
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(San::Dns((*d).to_owned())),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(San::Ip(<[u8; 4]>::try_from(*b).expect("v4").into())),
                16 => Some(San::Ip(<[u8; 16]>::try_from(*b).expect("v6").into())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn serving_certificate_holds_every_required_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(tmp.path());
    cfg.cluster_domain = "corp.internal".into();
    cfg.service_cidr_first_ip = rkube_pki::service_cidr_first_ip("10.43.0.0/16").expect("cidr");
    cfg.extra_sans = vec!["rkube.example.com".into(), "203.0.113.7".into()];
    let pki = Pki::load_or_create(&cfg).expect("create");
    let sans = sans_of(pki.serving().cert_der());
    for want in [
        "node-a",
        "192.168.50.10",
        "fd00::10",
        "127.0.0.1",
        "localhost",
        "10.43.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.corp.internal",
        "rkube.example.com",
        "203.0.113.7",
    ] {
        let want = San::parse(want).expect("san");
        assert!(sans.contains(&want), "missing {want} in {sans:?}");
    }
    let (_, cert) = X509Certificate::from_der(pki.serving().cert_der()).expect("parse");
    let eku = cert.extended_key_usage().expect("eku").expect("has eku");
    assert!(eku.value.server_auth && !eku.value.client_auth);
}

#[test]
fn admin_certificate_is_system_admin_in_system_masters_and_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(&config(tmp.path())).expect("create");
    let id = rkube_pki::client_identity(pki.admin().cert_der()).expect("identity");
    assert_eq!(id.username, "system:admin");
    assert_eq!(id.groups, ["system:masters"]);
    assert!(verifies_as_client_of(pki.ca_cert_der(), pki.admin().cert_der()));

    let kubelet = rkube_pki::client_identity(pki.kubelet_client().cert_der()).expect("identity");
    assert_eq!(kubelet.username, "kube-apiserver-kubelet-client");
    assert_eq!(kubelet.groups, ["system:masters"]);
    assert!(verifies_as_client_of(pki.ca_cert_der(), pki.kubelet_client().cert_der()));

    // The generic issuer: several groups, all kept in order.
    let node =
        pki.issue_client_cert("system:node:n1", &["system:nodes", "extra"], Duration::from_secs(3600)).expect("issue");
    let id = rkube_pki::client_identity(node.cert_der()).expect("identity");
    assert_eq!(id.username, "system:node:n1");
    assert_eq!(id.groups, ["system:nodes", "extra"]);
    assert!(verifies_as_client_of(pki.ca_cert_der(), node.cert_der()));

    let kubelet_serving = pki
        .issue_serving_cert(
            "n1",
            &[San::parse("n1").expect("san"), San::parse("10.0.0.5").expect("san")],
            Duration::from_secs(3600),
        )
        .expect("issue serving");
    assert_eq!(sans_of(kubelet_serving.cert_der()).len(), 2);
    assert!(pki.issue_serving_cert("n1", &[], Duration::from_secs(60)).is_err());
    assert!(pki.issue_client_cert("", &["g"], Duration::from_secs(60)).is_err());
}

#[test]
fn corrupt_ca_is_an_error_naming_the_file_and_nothing_is_overwritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).expect("create");
    let ca_cert = pki.paths().ca_cert.clone();
    let ca_key = pki.paths().ca_key.clone();

    for (path, junk) in [
        (&ca_cert, "not a certificate\n"),
        (&ca_cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        (&ca_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = config(tmp.path());
        let pki = Pki::load_or_create(&cfg).expect("create");
        let path = cfg.dir.join(path.file_name().expect("name"));
        fs::write(&path, junk).expect("corrupt");
        let before = snapshot(&cfg.dir);
        let err = Pki::load_or_create(&cfg).expect_err("corrupt CA must fail");
        let msg = err.to_string();
        assert!(matches!(err, PkiError::Corrupt { .. }), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("restore") && msg.contains("remove"), "{msg}");
        assert_eq!(snapshot(&cfg.dir), before, "nothing overwritten");
        drop(pki);
    }
}

#[test]
fn ca_pair_problems_are_refused_with_remedies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).expect("create");
    let paths = pki.paths().clone();

    // A key that is not the CA's.
    let saved_key = fs::read(&paths.ca_key).expect("read");
    fs::write(&paths.ca_key, rcgen::KeyPair::generate().expect("key").serialize_pem()).expect("write");
    let before = snapshot(&cfg.dir);
    let err = Pki::load_or_create(&cfg).expect_err("mismatch");
    assert!(matches!(err, PkiError::CaKeyMismatch { .. }), "{err}");
    assert_eq!(snapshot(&cfg.dir), before);

    // A missing key.
    fs::remove_file(&paths.ca_key).expect("rm");
    let err = Pki::load_or_create(&cfg).expect_err("missing key");
    assert!(matches!(err, PkiError::IncompletePair { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert!(!paths.ca_key.exists());

    // Restored: all is well again, and the key's mode is narrowed back if the backup widened it.
    fs::write(&paths.ca_key, saved_key).expect("restore");
    fs::set_permissions(&paths.ca_key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let again = Pki::load_or_create(&cfg).expect("restored");
    assert_eq!(again.ca_cert_pem(), pki.ca_cert_pem());
    assert_eq!(mode(&paths.ca_key), 0o600);
}

#[test]
fn corrupt_leaf_is_an_error_but_missing_or_foreign_leaves_are_reissued() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).expect("create");
    let paths = pki.paths().clone();

    fs::write(&paths.serving_cert, "garbage").expect("corrupt");
    let err = Pki::load_or_create(&cfg).expect_err("corrupt leaf");
    assert!(err.to_string().contains("serving-kube-apiserver.crt"), "{err}");
    assert_eq!(fs::read_to_string(&paths.serving_cert).expect("read"), "garbage");
    fs::remove_file(&paths.serving_cert).expect("rm");

    // A certificate from another CA (say, a stale backup) is replaced by one from ours.
    let other_tmp = tempfile::tempdir().expect("tempdir");
    let other = Pki::load_or_create(&config(other_tmp.path())).expect("other pki");
    fs::write(&paths.admin_cert, other.admin().cert_pem()).expect("write");
    fs::write(&paths.admin_key, other.admin().key_pem()).expect("write");

    let reloaded = Pki::load_or_create(&cfg).expect("reload");
    assert!(paths.serving_cert.exists());
    assert_ne!(reloaded.admin().cert_pem(), other.admin().cert_pem());
    assert!(verifies_as_client_of(reloaded.ca_cert_der(), reloaded.admin().cert_der()));
    assert_eq!(reloaded.ca_cert_pem(), pki.ca_cert_pem());
}

#[test]
fn expiring_leaf_is_reissued() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let pki = Pki::load_or_create(&cfg).expect("create");
    let short =
        pki.issue_client_cert("system:admin", &["system:masters"], Duration::from_secs(10 * 86_400)).expect("issue");
    fs::write(&pki.paths().admin_cert, short.cert_pem()).expect("write");
    fs::write(&pki.paths().admin_key, short.key_pem()).expect("write");
    let reloaded = Pki::load_or_create(&cfg).expect("reload");
    assert_ne!(reloaded.admin().cert_pem(), short.cert_pem());
    let (_, cert) = X509Certificate::from_der(reloaded.admin().cert_der()).expect("parse");
    let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert!(days >= 365, "{days}");
}
