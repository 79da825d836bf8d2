//! TLS with client-certificate authentication against a real etcd: the right files work, and each wrong setup
//! fails with an `Unavailable` error that names the endpoint, the files involved and the fix.

mod common;

use rkube_store::{Error, Store};
use rkube_store_etcd::{EtcdConfig, EtcdStore, LocalEtcd, LocalEtcdOptions};

async fn tls_etcd(pki: &common::Pki) -> LocalEtcd {
    let options = LocalEtcdOptions { tls: Some(common::tls_options(pki)), ..Default::default() };
    LocalEtcd::start(options).await.expect("start a local etcd with TLS")
}

/// Connects with `config`, expecting an `Unavailable` error; returns its full text.
async fn refused(config: EtcdConfig) -> String {
    let err = EtcdStore::connect(config).await.err().expect("connect must fail");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    eprintln!("{err}");
    err.to_string()
}

#[tokio::test]
async fn right_files_work_and_wrong_setups_are_named() {
    let pki = common::pki();
    let etcd = tls_etcd(&pki).await;
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");

    // The right CA and a client certificate it signed.
    let good = etcd.client_config();
    let store = EtcdStore::connect(good.clone()).await.expect("connect with the right files");
    let kv = store.create("/registry/secrets/tls/a", b"{}".to_vec()).await.expect("create over TLS");
    assert_eq!(store.get(&kv.key).await.expect("get").expect("present"), kv);
    assert!(store.describe().contains(&endpoint));

    // No client certificate, while etcd requires one.
    let msg = refused(EtcdConfig { cert_file: None, key_file: None, ..good.clone() }).await;
    assert!(msg.contains(&endpoint), "names the endpoint: {msg}");
    assert!(msg.contains("client certificate"), "says a client certificate is needed: {msg}");
    assert!(msg.contains("--etcd-certfile"), "says how to give one: {msg}");

    // A CA that did not sign etcd's server certificate.
    let msg = refused(EtcdConfig { ca_file: Some(pki.other_ca.clone()), ..good.clone() }).await;
    assert!(msg.contains(&endpoint), "names the endpoint: {msg}");
    assert!(msg.contains(&pki.other_ca.display().to_string()), "names the CA file: {msg}");
    assert!(msg.contains("--etcd-cafile"), "says which flag to fix: {msg}");

    // A client certificate from a CA that etcd does not trust.
    let msg = refused(EtcdConfig {
        cert_file: Some(pki.other_client_cert.clone()),
        key_file: Some(pki.other_client_key.clone()),
        ..good.clone()
    })
    .await;
    assert!(msg.contains(&endpoint), "names the endpoint: {msg}");
    assert!(msg.contains(&pki.other_client_cert.display().to_string()), "names the client certificate: {msg}");

    // Plain HTTP against the TLS port.
    let plain = endpoint.replacen("https://", "http://", 1);
    let msg = refused(EtcdConfig::new([plain.clone()])).await;
    assert!(msg.contains(&plain), "names the endpoint: {msg}");
    assert!(msg.contains("https://"), "suggests https: {msg}");

    // HTTPS without any CA.
    let msg = refused(EtcdConfig::new([endpoint.clone()])).await;
    assert!(msg.contains("--etcd-cafile"), "asks for the CA file: {msg}");
}

#[tokio::test]
async fn https_against_a_plain_http_etcd_is_named() {
    let (etcd, _store) = common::etcd_and_store().await;
    let pki = common::pki();
    let endpoint = etcd.endpoint().replacen("http://", "https://", 1);
    let msg = refused(EtcdConfig { ca_file: Some(pki.ca.clone()), ..EtcdConfig::new([endpoint.clone()]) }).await;
    assert!(msg.contains(&endpoint), "names the endpoint: {msg}");
    assert!(msg.contains("TLS"), "says the TLS handshake failed: {msg}");
}
