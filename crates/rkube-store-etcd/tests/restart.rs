//! Watches survive an etcd restart: they resume after the last delivered revision, with nothing lost or repeated,
//! and end with `Expired` when that revision was compacted while they were away.

mod common;

use rkube_store::{Error, Event, EventKind, Revision, Store};
use rkube_store_etcd::{EtcdStore, LocalEtcd, LocalEtcdOptions};

const P: &str = "/registry/configmaps/restart/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_every_event_once_across_a_restart() {
    let (mut etcd, store) = common::etcd_and_store().await;
    let start = store.current_revision().await.expect("current revision");
    let mut watch = store.watch(P, start).await.expect("watch");

    let mut acked: Vec<(EventKind, Revision)> = Vec::new();
    for i in 0..20 {
        let kv = store.create(&format!("{P}k{i}"), format!("{i}").into_bytes()).await.expect("create");
        acked.push((EventKind::Added, kv.mod_revision));
    }
    // Consume half before the restart, so the resume point is in the middle of what was written.
    let mut seen: Vec<Event> = Vec::new();
    seen.extend(rkube_store::conformance::next_events(&mut watch, 10).await);

    etcd.stop().await.expect("stop etcd");
    // While etcd is down, requests fail as Unavailable, naming the endpoint.
    let err = store.get(&format!("{P}k0")).await.expect_err("get while etcd is down");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains(&etcd.endpoint()), "{err}");

    etcd.restart().await.expect("start etcd again");
    for i in 0..10 {
        let key = format!("{P}k{i}");
        let cur = store.get(&key).await.expect("get after restart").expect("kept across the restart");
        let kv = store.update(&key, b"updated".to_vec(), cur.mod_revision).await.expect("update");
        acked.push((EventKind::Modified, kv.mod_revision));
    }
    let (_, rev) = store.delete(&format!("{P}k19"), None).await.expect("delete");
    acked.push((EventKind::Deleted, rev));
    let kv = store.create(&format!("{P}new"), b"new".to_vec()).await.expect("create after restart");
    acked.push((EventKind::Added, kv.mod_revision));

    seen.extend(rkube_store::conformance::next_events(&mut watch, acked.len() - seen.len()).await);
    let got: Vec<(EventKind, Revision)> = seen.iter().map(|e| (e.kind, e.revision())).collect();
    assert_eq!(got, acked, "every change once, in order");
    let deleted = seen.iter().find(|e| e.kind == EventKind::Deleted).expect("the deletion");
    assert_eq!(deleted.kv.value, b"19", "a deletion carries the last value");
    common::assert_quiet(&mut watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_expired_when_its_resume_point_was_compacted_meanwhile() {
    let (mut etcd, store) = common::etcd_and_store().await;
    let first = store.create(&format!("{P}a"), b"1".to_vec()).await.expect("create");
    let mut watch = store.watch(P, first.mod_revision).await.expect("watch");
    etcd.stop().await.expect("stop etcd");

    // The same data served on another port, where the watch cannot see it: history moves on and is compacted.
    let options = LocalEtcdOptions { data_dir: Some(etcd.data_dir().to_owned()), ..Default::default() };
    let mut other = LocalEtcd::start(options).await.expect("start etcd on the same data elsewhere");
    let other_store = EtcdStore::connect(other.client_config()).await.expect("connect");
    let mut kv = first.clone();
    for i in 0..5 {
        kv = other_store.update(&kv.key, format!("{i}").into_bytes(), kv.mod_revision).await.expect("update");
    }
    other_store.compact(kv.mod_revision).await.expect("compact");
    other.stop().await.expect("stop the other etcd");
    drop(other);

    etcd.restart().await.expect("start etcd again");
    match common::next_item(&mut watch).await {
        Some(Err(Error::Expired { requested, compacted })) => {
            assert_eq!(requested, first.mod_revision);
            assert_eq!(compacted, kv.mod_revision);
        }
        other => panic!("expected the watch to end with Expired, got {other:?}"),
    }
    assert!(common::next_item(&mut watch).await.is_none(), "the watch ends after the error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_watches_fail_over_to_the_next_endpoint() {
    let mut first = LocalEtcd::start(LocalEtcdOptions::default()).await.expect("start etcd");
    let spare_port = {
        let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let spare = format!("http://127.0.0.1:{spare_port}");
    // The second endpoint is down at connect: the store connects through the first.
    let config = rkube_store_etcd::EtcdConfig::new([first.endpoint(), spare.clone()]);
    let store = EtcdStore::connect(config).await.expect("connect");
    let a = store.create(&format!("{P}a"), b"1".to_vec()).await.expect("create");
    let mut watch = store.watch(P, a.mod_revision).await.expect("watch");

    // The same member moves to the second endpoint: the first is gone, the second answers.
    first.stop().await.expect("stop the first endpoint");
    let options = LocalEtcdOptions {
        data_dir: Some(first.data_dir().to_owned()),
        client_port: Some(spare_port),
        ..Default::default()
    };
    let _second = LocalEtcd::start(options).await.expect("serve the same data on the second endpoint");
    let got = store.get(&a.key).await.expect("get fails over").expect("present");
    assert_eq!(got, a);
    let b = store.update(&a.key, b"2".to_vec(), a.mod_revision).await.expect("update fails over");
    let evs = rkube_store::conformance::next_events(&mut watch, 1).await;
    assert_eq!((evs[0].kind, evs[0].revision()), (EventKind::Modified, b.mod_revision));
    common::assert_quiet(&mut watch).await;
}
