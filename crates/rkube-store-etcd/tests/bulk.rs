//! Bulk creation and prefix deletion (used by `rkube restore` and `rkube migrate`) against a real etcd.

use rkube_store::{ListOptions, Store};
use rkube_store_etcd::{EtcdStore, LocalEtcd, LocalEtcdOptions};

#[tokio::test]
async fn create_many_writes_every_key_in_few_transactions_and_refuses_existing_ones() {
    let etcd = LocalEtcd::start(LocalEtcdOptions::default()).await.expect("start a local etcd");
    let store = EtcdStore::connect(etcd.client_config()).await.expect("connect");
    let before = store.current_revision().await.expect("revision");
    // More keys than one transaction takes, and values large enough that the byte limit splits too.
    let items: Vec<(String, Vec<u8>)> =
        (0..300).map(|i| (format!("/r/k{i:04}"), vec![b'x'; if i % 50 == 0 { 600_000 } else { 100 }])).collect();
    let last = store.create_many(&items).await.expect("create many");
    let all = store.list("/r/", ListOptions::default()).await.expect("list");
    assert_eq!(all.items.len(), 300);
    assert!(all.items.iter().zip(&items).all(|(kv, (k, v))| &kv.key == k && &kv.value == v));
    assert_eq!(all.revision, last);
    assert!(last - before < 300, "keys share transactions: {} revisions for 300 keys", last - before);

    let clash = vec![("/r/new".to_owned(), b"n".to_vec()), ("/r/k0001".to_owned(), b"again".to_vec())];
    let err = store.create_many(&clash).await.expect_err("an existing key fails its transaction");
    assert!(matches!(err, rkube_store::Error::AlreadyExists { .. }), "{err}");
    assert_eq!(store.get("/r/new").await.expect("get"), None, "nothing of the failed transaction is written");
    assert_eq!(store.get("/r/k0001").await.expect("get").map(|kv| kv.value), Some(b"x".repeat(100)));

    store.create("/other", b"kept".to_vec()).await.expect("create");
    assert_eq!(store.delete_prefix("/r/").await.expect("delete prefix"), 300);
    assert!(store.list("/r/", ListOptions::default()).await.expect("list").items.is_empty());
    assert!(store.get("/other").await.expect("get").is_some(), "keys outside the prefix stay");
    assert!(store.delete_prefix("").await.is_err(), "an empty prefix is refused");
}
