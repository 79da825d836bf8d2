//! Failures a user can cause, each reported clearly: endpoints that are down or silent, missing certificate files,
//! inconsistent configuration, values over the size limit.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use rkube_store::{Error, Store};
use rkube_store_etcd::{EtcdConfig, EtcdStore};

/// A loopback URL where nothing listens.
fn dead_endpoint() -> String {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// Connects, failing the test if that hangs (a guard, not a measurement); returns the error.
async fn connect_err(config: EtcdConfig) -> Error {
    tokio::time::timeout(Duration::from_secs(30), EtcdStore::connect(config))
        .await
        .expect("connect must not hang")
        .err()
        .expect("connect must fail")
}

#[tokio::test]
async fn endpoints_down_are_unavailable_and_named() {
    let (a, b) = (dead_endpoint(), dead_endpoint());
    let err = connect_err(EtcdConfig::new([a.clone(), b.clone()])).await;
    assert!(err.is_unavailable(), "{err:?}");
    let msg = err.to_string();
    for ep in [&a, &b] {
        assert!(msg.contains(ep.as_str()), "names {ep}: {msg}");
    }
    assert!(msg.contains("etcd is running"), "says what to check: {msg}");
}

#[tokio::test]
async fn a_silent_endpoint_is_unavailable_within_the_connect_timeout() {
    // Accepts connections (the kernel does, into the backlog) but never answers.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let ep = format!("http://{}", silent.local_addr().expect("addr"));
    let config = EtcdConfig { connect_timeout: Duration::from_millis(500), ..EtcdConfig::new([ep.clone()]) };
    let err = connect_err(config).await;
    assert!(err.is_unavailable(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&ep) && msg.contains("no answer within"), "{msg}");
}

#[tokio::test]
async fn one_endpoint_down_of_two_still_connects() {
    let (_etcd, _) = common::etcd_and_store().await;
    let config = EtcdConfig::new([dead_endpoint(), _etcd.endpoint()]);
    let store = EtcdStore::connect(config).await.expect("connect through the live endpoint");
    // The balancer skips the dead endpoint.
    for i in 0..5 {
        store.create(&format!("/registry/pods/ns/p{i}"), b"{}".to_vec()).await.expect("create");
    }
}

#[tokio::test]
async fn missing_certificate_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = |name: &str| -> PathBuf { dir.path().join(name) };
    let base = EtcdConfig::new(["https://127.0.0.1:2379"]);

    let err = connect_err(EtcdConfig { ca_file: Some(missing("ca.pem")), ..base.clone() }).await;
    let msg = err.to_string();
    assert!(msg.contains(&missing("ca.pem").display().to_string()) && msg.contains("--etcd-cafile"), "{msg}");

    let pki = common::pki();
    let err = connect_err(EtcdConfig {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(missing("client.pem")),
        key_file: Some(pki.client_key.clone()),
        ..base.clone()
    })
    .await;
    let msg = err.to_string();
    assert!(msg.contains(&missing("client.pem").display().to_string()) && msg.contains("--etcd-certfile"), "{msg}");

    let err = connect_err(EtcdConfig {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(missing("client-key.pem")),
        ..base.clone()
    })
    .await;
    let msg = err.to_string();
    assert!(msg.contains(&missing("client-key.pem").display().to_string()) && msg.contains("--etcd-keyfile"), "{msg}");

    // A file that is there but is not PEM.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"not a certificate").expect("write");
    let err = connect_err(EtcdConfig { ca_file: Some(garbage.clone()), ..base.clone() }).await;
    let msg = err.to_string();
    assert!(msg.contains(&garbage.display().to_string()) && msg.contains("not PEM"), "{msg}");
}

#[tokio::test]
async fn inconsistent_configurations_are_refused_with_the_fix() {
    let pki = common::pki();
    let cases = [
        (EtcdConfig::default(), "no etcd endpoints"),
        (EtcdConfig { ca_file: Some(pki.ca.clone()), ..EtcdConfig::new(["http://127.0.0.1:2379"]) }, "https://"),
        (EtcdConfig::new(["http://127.0.0.1:2379", "https://127.0.0.1:2380"]), "one scheme"),
        (EtcdConfig::new(["ftp://127.0.0.1:2379"]), "http:// or https://"),
        (
            EtcdConfig {
                ca_file: Some(pki.ca.clone()),
                cert_file: Some(pki.client_cert.clone()),
                ..EtcdConfig::new(["https://127.0.0.1:2379"])
            },
            "--etcd-keyfile",
        ),
    ];
    for (config, hint) in cases {
        let err = connect_err(config.clone()).await;
        assert!(err.is_unavailable(), "{config:?}: {err:?}");
        assert!(err.to_string().contains(hint), "{config:?}: {err}");
    }
}

#[tokio::test]
async fn values_over_the_limit_are_refused_and_nothing_is_stored() {
    let (_etcd, store) = common::etcd_and_store().await;
    let key = "/registry/configmaps/big/over";
    let rev = store.current_revision().await.expect("rev");
    let over = vec![b'x'; rkube_store::MAX_VALUE_SIZE + 1];
    let err = store.create(key, over.clone()).await.expect_err("create over the limit");
    assert!(
        matches!(err, Error::ValueTooLarge { ref key, size, limit } if key == "/registry/configmaps/big/over"
            && size == rkube_store::MAX_VALUE_SIZE + 1 && limit == rkube_store::MAX_VALUE_SIZE),
        "{err:?}"
    );
    let kv = store.create(key, b"small".to_vec()).await.expect("create");
    let err = store.update(key, over, kv.mod_revision).await.expect_err("update over the limit");
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    assert_eq!(store.get(key).await.expect("get").expect("present").value, b"small");
    assert_eq!(store.current_revision().await.expect("rev"), rev + 1, "only the small create was written");
}

#[tokio::test]
async fn requests_to_a_stopped_etcd_fail_as_unavailable() {
    let (mut etcd, store) = common::etcd_and_store().await;
    etcd.stop().await.expect("stop");
    let err = tokio::time::timeout(Duration::from_secs(90), store.list("/registry/", Default::default()))
        .await
        .expect("must not hang")
        .expect_err("list against a stopped etcd");
    assert!(err.is_unavailable(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&etcd.endpoint()) && msg.contains("list /registry/"),
        "names the endpoint and the operation: {msg}"
    );
    let err = store.watch("/registry/", 0).await.err().expect("watch against a stopped etcd");
    assert!(err.is_unavailable(), "{err:?}");
}
