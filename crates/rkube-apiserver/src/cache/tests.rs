use std::sync::Arc;
use std::time::Duration;

use rkube_store::memory::MemoryStore;
use rkube_store::{Revision, Store};

use super::{Cache, WatchStart};

const HISTORY: usize = 100;

async fn cache_over(store: Arc<MemoryStore>) -> (Arc<Cache>, tokio::sync::watch::Sender<bool>) {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let cache = Cache::start(store, "/registry/".to_owned(), HISTORY, shutdown).await.expect("cache starts");
    (cache, stop)
}

async fn put(store: &MemoryStore, key: &str, n: usize) -> Revision {
    let value = format!(r#"{{"metadata":{{"name":"x{n}"}}}}"#).into_bytes();
    match store.get(key).await.expect("get") {
        Some(kv) => store.update(key, value, kv.mod_revision).await.expect("update").mod_revision,
        None => store.create(key, value).await.expect("create").mod_revision,
    }
}

fn replayed(start: WatchStart) -> Option<Vec<Revision>> {
    match start {
        WatchStart::Ok(events, _) => Some(events.iter().map(|e| e.revision).collect()),
        WatchStart::TooOld => None,
    }
}

#[tokio::test]
async fn a_burst_of_one_resource_keeps_the_history_of_the_others() {
    let store = Arc::new(MemoryStore::new());
    let (cache, _stop) = cache_over(store.clone()).await;
    let lease = put(&store, "/registry/leases/kube-node-lease/n1", 0).await;
    let before_burst = put(&store, "/registry/leases/kube-node-lease/n1", 1).await;
    let mut last = 0;
    for n in 0..HISTORY + 10 {
        last = put(&store, &format!("/registry/pods/default/p{}", n % 50), n).await;
    }
    assert!(cache.wait_for(last, Duration::from_secs(10)).await, "the cache applies the burst");

    // Leases changed twice, long before the pods' burst: a watch of them from before both still replays both.
    assert_eq!(replayed(cache.watch_from("/registry/leases/", lease - 1)), Some(vec![lease, before_burst]));
    assert_eq!(replayed(cache.watch_from("/registry/leases/kube-node-lease/", before_burst)), Some(vec![]));
    assert!(cache.covers("/registry/leases/", lease - 1));
    // The pods' own history holds only the last HISTORY events.
    assert!(!cache.covers("/registry/pods/", before_burst));
    assert!(replayed(cache.watch_from("/registry/pods/", before_burst)).is_none());
    let recent = replayed(cache.watch_from("/registry/pods/default/", last - 3)).expect("recent pod events are kept");
    assert_eq!(recent, vec![last - 2, last - 1, last]);
    // A resource never written since the cache loaded has lost nothing after the load.
    assert!(cache.covers("/registry/services/", 0));
    assert_eq!(replayed(cache.watch_from("/registry/configmaps/", 0)), Some(vec![]));
    assert_eq!(cache.last_change("pods"), last);
    assert_eq!(cache.last_change("leases"), before_burst);
}

/// What the registry leaves with the cache before its write is what the cache keeps and watchers see (the same
/// object, not a second parse), and what the write returns.
#[tokio::test]
async fn an_object_left_by_its_writer_replaces_parsing_the_stored_bytes() {
    let store = Arc::new(MemoryStore::new());
    let (cache, _stop) = cache_over(store.clone()).await;
    let key = "/registry/configmaps/default/a";
    let bytes = br#"{"data":{"k":"v"},"metadata":{"name":"a"}}"#.to_vec();
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let pending = cache.pend(key, &bytes, value);
    let rev = store.create(key, bytes).await.expect("create").mod_revision;
    let written = pending.written(rev).expect("the write's object");
    assert!(cache.wait_for(rev, Duration::from_secs(10)).await);
    let kept = cache.get(key).expect("cached");
    assert!(Arc::ptr_eq(&kept, &written), "the written object is kept, not a parse of the stored bytes");
    assert_eq!(
        kept.value.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()),
        Some(rev.to_string().as_str())
    );
    // Its JSON is made from the stored bytes (cache/rawjson.rs): exactly what serializing it would give.
    assert_eq!(kept.json().as_ref(), serde_json::to_vec(&kept.value).expect("serializes").as_slice());
    assert!(kept.stored.lock().expect("lock").is_none(), "the stored bytes were used and let go");

    // Different bytes stored than left (another writer's): the cache parses what was stored.
    let other = cache.pend(key, b"{}", serde_json::json!({"wrong": true}));
    let rev2 = store.update(key, br#"{"metadata":{"name":"a"}}"#.to_vec(), rev).await.expect("update").mod_revision;
    assert!(cache.wait_for(rev2, Duration::from_secs(10)).await);
    assert!(cache.get(key).expect("cached").value.get("wrong").is_none());
    drop(other);
    assert!(cache.handover.is_empty(), "nothing is left behind");
}

/// `holds_any` (asked on every namespaced create: are there quotas here?) sees only keys under the prefix: a
/// namespace whose name extends another's is not the other.
#[tokio::test]
async fn holds_any_sees_only_keys_under_the_prefix() {
    let store = Arc::new(MemoryStore::new());
    let (cache, _stop) = cache_over(store.clone()).await;
    let last = put(&store, "/registry/resourcequotas/ns10/q", 0).await;
    assert!(cache.wait_for(last, Duration::from_secs(10)).await);
    assert!(cache.holds_any("/registry/resourcequotas/ns10/"));
    assert!(!cache.holds_any("/registry/resourcequotas/ns1/"));
    assert!(!cache.holds_any("/registry/resourcequotas/ns2/"));
    let last = put(&store, "/registry/resourcequotas/ns1/q", 1).await;
    assert!(cache.wait_for(last, Duration::from_secs(10)).await);
    assert!(cache.holds_any("/registry/resourcequotas/ns1/"));
}

/// The JSON of an object left by its writer is made from the bytes it stored, not by serializing it again: a
/// spelling serde_json would not write (a space inside a member) shows which.
#[tokio::test]
async fn a_written_object_s_json_is_made_from_its_stored_bytes() {
    let store = Arc::new(MemoryStore::new());
    let (cache, _stop) = cache_over(store.clone()).await;
    let key = "/registry/configmaps/default/b";
    let bytes = br#"{"data":{"k": "v"},"metadata":{"name":"b"}}"#.to_vec();
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let pending = cache.pend(key, &bytes, value);
    let rev = store.create(key, bytes).await.expect("create").mod_revision;
    let written = pending.written(rev).expect("the write's object");
    let want = format!(r#"{{"data":{{"k": "v"}},"metadata":{{"name":"b","resourceVersion":"{rev}"}}}}"#);
    assert_eq!(String::from_utf8_lossy(written.json()), want);
}
