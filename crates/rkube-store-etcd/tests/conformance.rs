//! The shared backend conformance suite against a real etcd: one fresh etcd per test.

use std::sync::Arc;

use rkube_store_etcd::{EtcdStore, LocalEtcd, LocalEtcdOptions};

rkube_store::conformance_tests!(|| async {
    let etcd = LocalEtcd::start(LocalEtcdOptions::default()).await.expect("start a local etcd");
    let store = EtcdStore::connect(etcd.client_config()).await.expect("connect to the local etcd");
    rkube_store::conformance::Fixture { store: Arc::new(store), guard: Box::new(etcd) }
});
