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

/// What the registry hands over after its write is what the cache keeps and watchers see (the same object, not a
/// second parse); an offer that comes after its event was applied is not kept, nor is one for another key.
#[tokio::test]
async fn an_object_offered_by_its_writer_replaces_parsing_the_stored_bytes() {
    let store = Arc::new(MemoryStore::new());
    let (cache, _stop) = cache_over(store.clone()).await;
    // Nothing else writes, so the revision the write will get is known beforehand.
    let next = store.current_revision().await.expect("revision") + 1;
    let key = "/registry/configmaps/default/a";
    let written =
        serde_json::json!({"metadata": {"name": "a", "resourceVersion": next.to_string()}, "data": {"k": "v"}});
    let offered = Arc::new(super::CachedObject::new(written, next));
    cache.offer(key, &offered);
    cache.offer(
        "/registry/configmaps/default/other",
        &Arc::new(super::CachedObject::new(serde_json::json!({}), next + 1)),
    );
    let rev = store
        .create(key, br#"{"metadata":{"name":"a"},"data":{"k":"v"}}"#.to_vec())
        .await
        .expect("create")
        .mod_revision;
    assert_eq!(rev, next);
    assert!(cache.wait_for(rev, Duration::from_secs(10)).await);
    let kept = cache.get(key).expect("cached");
    assert!(Arc::ptr_eq(&kept, &offered), "the offered object is kept, not a parse of the stored bytes");

    // The other key's revision comes from a write of a different key: its offer must not be used.
    let key2 = "/registry/configmaps/default/b";
    let rev2 = store.create(key2, br#"{"metadata":{"name":"b"}}"#.to_vec()).await.expect("create").mod_revision;
    assert_eq!(rev2, next + 1);
    assert!(cache.wait_for(rev2, Duration::from_secs(10)).await);
    let b = cache.get(key2).expect("cached");
    assert_eq!(b.value.pointer("/metadata/name").and_then(|v| v.as_str()), Some("b"), "parsed from the store");
    assert_eq!(b.value.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()), Some(rev2.to_string().as_str()));

    // Too late: the event is applied already, so the offer is dropped, and nothing is left waiting.
    cache.offer(key2, &Arc::new(super::CachedObject::new(serde_json::json!({"late": true}), rev2)));
    assert!(cache.offered.lock().expect("lock").objects.is_empty());
    assert!(cache.get(key2).expect("cached").value.get("late").is_none());
}
