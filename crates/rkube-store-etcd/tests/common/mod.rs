//! Helpers shared by this crate's integration tests: a local etcd with a connected store, certificates, event reading.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rkube_store::WatchStream;
use rkube_store_etcd::{EtcdStore, LocalEtcd, LocalEtcdOptions, LocalEtcdTls};

/// A fresh plain-HTTP etcd and a store connected to it.
pub async fn etcd_and_store() -> (LocalEtcd, EtcdStore) {
    let etcd = LocalEtcd::start(LocalEtcdOptions::default()).await.expect("start a local etcd");
    let store = EtcdStore::connect(etcd.client_config()).await.expect("connect to the local etcd");
    (etcd, store)
}

/// Asserts that nothing arrives on a watch for a short while.
pub async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("unexpected extra watch item: {item:?}");
    }
}

/// Waits for the next watch item, failing the test if none comes (a hang is a failure, not a measurement).
pub async fn next_item(watch: &mut WatchStream) -> Option<rkube_store::Result<rkube_store::Event>> {
    tokio::time::timeout(Duration::from_secs(60), watch.next()).await.expect("a watch item within 60 s")
}

/// Certificates for TLS tests, as PEM files in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing etcd knows.
    pub other_ca: PathBuf,
    /// A client certificate signed by `other_ca`.
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).expect("self-sign the CA");
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

fn leaf(ca: &Ca, name: &str, sans: Vec<String>, eku: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![eku];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let cert = params.signed_by(&key, &ca.issuer).expect("sign the leaf");
    (cert.pem(), key.serialize_pem())
}

/// A CA, a server certificate for 127.0.0.1, a client certificate, and a second, unrelated CA with its own client.
pub fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path
    };
    let main = ca("rkube test CA");
    let other = ca("some other CA");
    let (server_cert, server_key) =
        leaf(&main, "etcd", vec!["127.0.0.1".into(), "localhost".into()], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&main, "kube-apiserver", vec![], ExtendedKeyUsagePurpose::ClientAuth);
    let (other_client_cert, other_client_key) = leaf(&other, "intruder", vec![], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: write("ca.pem", &main.pem),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
        other_ca: write("other-ca.pem", &other.pem),
        other_client_cert: write("other-client.pem", &other_client_cert),
        other_client_key: write("other-client-key.pem", &other_client_key),
        dir,
    }
}

/// TLS options for a local etcd with client-certificate authentication.
pub fn tls_options(pki: &Pki) -> LocalEtcdTls {
    LocalEtcdTls {
        ca_file: pki.ca.clone(),
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_cert_auth: true,
        client_cert_file: Some(pki.client_cert.clone()),
        client_key_file: Some(pki.client_key.clone()),
    }
}
