//! Behaviour of the whole store that the shared conformance suite does not cover: two stores on one
//! file, group commit under concurrency, old-revision pages, the size limit, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rkube_store::{Error, EventKind, ListOptions, MAX_VALUE_SIZE, Store};

use crate::{SqliteOptions, SqliteStore};

fn options() -> SqliteOptions {
    SqliteOptions {
        compaction_interval: Duration::ZERO,
        watch_poll_interval: Duration::from_millis(100),
        ..SqliteOptions::default()
    }
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes_through_watch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let a = SqliteStore::open(&path, options()).expect("open a");
    let b = SqliteStore::open(&path, options()).expect("open b");
    let mut watch_a = a.watch("/x/", 0).await.expect("watch a");
    let mut watch_b = b.watch("/x/", 0).await.expect("watch b");

    // Only b writes here, so a's watch learns of it through polling alone (a's writer announces nothing).
    let first = b.create("/x/1", b"from b".to_vec()).await.expect("b writes");
    let second = b.update("/x/1", b"again".to_vec(), first.mod_revision).await.expect("b updates");
    let events = tokio::time::timeout(Duration::from_secs(10), watch_a.by_ref().take(2).collect::<Vec<_>>())
        .await
        .expect("a's watch saw b's writes by polling");
    let seen: Vec<_> = events.into_iter().map(|e| e.expect("event")).collect();
    assert_eq!((seen[0].kind, seen[0].kv.mod_revision), (EventKind::Added, first.mod_revision));
    assert_eq!(seen[1].kv, second);
    assert_eq!(seen[1].prev.as_ref().map(|p| p.value.as_slice()), Some(&b"from b"[..]));

    // And the other way round, continuing the same revision sequence.
    let from_a = a.create("/x/2", b"from a".to_vec()).await.expect("a writes");
    assert_eq!(from_a.mod_revision, second.mod_revision + 1, "one revision sequence for the file");
    let events = tokio::time::timeout(Duration::from_secs(10), watch_b.by_ref().take(3).collect::<Vec<_>>())
        .await
        .expect("b's watch saw a's write by polling");
    assert_eq!(events.last().map(|e| e.as_ref().expect("event").kv.clone()), Some(from_a));
    assert_eq!(b.get("/x/2").await.expect("get").map(|kv| kv.value), Some(b"from a".to_vec()));
}

/// A watch woken by its own store's commit reads that commit from memory, but a revision written in between
/// by the other store is only in the file: the watch must read it from there, in order, not skip it.
#[tokio::test]
async fn a_watch_never_skips_a_revision_another_store_wrote_between_its_own_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    // A long poll interval, so what a's watch sees of b comes from the gap check, not the timer.
    let slow = SqliteOptions { watch_poll_interval: Duration::from_secs(30), ..options() };
    let a = SqliteStore::open(&path, slow).expect("open a");
    let b = SqliteStore::open(&path, options()).expect("open b");
    let mut watch = a.watch("/x/", 0).await.expect("watch a");
    let first = a.create("/x/1", b"a".to_vec()).await.expect("a writes");
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("a's own write");
    assert_eq!(seen.expect("open").expect("event").kv, first);
    let between = b.create("/x/2", b"b".to_vec()).await.expect("b writes");
    let last = a.create("/x/3", b"a again".to_vec()).await.expect("a writes again");
    let events = tokio::time::timeout(Duration::from_secs(10), watch.by_ref().take(2).collect::<Vec<_>>())
        .await
        .expect("both later writes arrive without waiting for the poll timer");
    let kvs: Vec<_> = events.into_iter().map(|e| e.expect("event").kv).collect();
    assert_eq!(kvs, vec![between, last]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_distinct_revisions_and_cas_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db"), options()).expect("open"));
    let base = store.create("/c", b"0".to_vec()).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let created = store.create(&format!("/k/{i:02}"), vec![i]).await.expect("create").mod_revision;
            let cas = store.update("/c", vec![i], base.mod_revision).await;
            (created, cas)
        }));
    }
    let mut revisions = Vec::new();
    let mut winners = 0;
    for task in tasks {
        let (created, cas) = task.await.expect("task");
        revisions.push(created);
        match cas {
            Ok(kv) => {
                winners += 1;
                revisions.push(kv.mod_revision);
            }
            Err(Error::Conflict { expected, actual, .. }) => {
                assert!(expected == base.mod_revision && actual > expected)
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(winners, 1, "exactly one compare-and-swap wins");
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 65, "every write has its own revision");
    assert_eq!(store.current_revision().await.expect("rev"), 66);
}

#[tokio::test]
async fn pages_at_an_old_revision_come_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db"), options()).expect("open");
    for i in 0..10 {
        store.create(&format!("/p/{i}"), format!("v{i}").into_bytes()).await.expect("create");
    }
    let at = store.current_revision().await.expect("rev");
    // Change the present so that only the log can answer for `at`.
    store.delete("/p/3", None).await.expect("delete");
    let kv = store.get("/p/5").await.expect("get").expect("exists");
    store.update("/p/5", b"changed".to_vec(), kv.mod_revision).await.expect("update");
    store.create("/p/35", b"new".to_vec()).await.expect("create");

    let mut keys = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .list("/p/", ListOptions { revision: Some(at), limit: Some(3), start: start.clone() })
            .await
            .expect("page");
        assert_eq!(page.revision, at);
        keys.extend(page.items.iter().map(|kv| (kv.key.clone(), kv.value.clone())));
        if !page.more {
            break;
        }
        start = page.items.last().map(|kv| format!("{}\0", kv.key));
    }
    let want: Vec<(String, Vec<u8>)> = (0..10).map(|i| (format!("/p/{i}"), format!("v{i}").into_bytes())).collect();
    assert_eq!(keys, want);

    let now = store.list("/p/", ListOptions::default()).await.expect("list now");
    assert_eq!(now.items.len(), 10, "one deleted, one created");
    let future = store.list("/p/", ListOptions { revision: Some(at + 100), ..Default::default() }).await;
    assert!(matches!(future, Err(Error::FutureRevision { .. })), "{future:?}");
}

#[tokio::test]
async fn oversized_values_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db"), options()).expect("open");
    let big = vec![7u8; MAX_VALUE_SIZE + 1];
    assert!(matches!(store.create("/big", big.clone()).await, Err(Error::ValueTooLarge { .. })));
    let kv = store.create("/big", vec![1]).await.expect("create small");
    assert!(matches!(store.update("/big", big, kv.mod_revision).await, Err(Error::ValueTooLarge { .. })));
    assert_eq!(store.current_revision().await.expect("rev"), kv.mod_revision);
    assert_eq!(store.get("/big").await.expect("get"), Some(kv));
    let limit = store.create("/limit", vec![9u8; MAX_VALUE_SIZE]).await.expect("a value at the limit fits");
    assert_eq!(store.get("/limit").await.expect("get").map(|kv| kv.value.len()), Some(MAX_VALUE_SIZE));
    assert_eq!(limit.value.len(), MAX_VALUE_SIZE);
}

#[tokio::test]
async fn dropping_the_store_ends_its_watches_and_releases_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, options()).expect("open");
    let mut watch = store.watch("/", 0).await.expect("watch");
    store.create("/a", b"1".to_vec()).await.expect("create");
    let event = watch.next().await.expect("event").expect("ok");
    assert_eq!(event.kind, EventKind::Added);
    drop(store);
    assert!(tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("the watch ended").is_none());
    // The writer thread was joined: a new store takes over the file and continues the revisions.
    let store = SqliteStore::open(&path, options()).expect("reopen");
    assert_eq!(store.create("/b", b"2".to_vec()).await.expect("create").mod_revision, 2);
}

#[tokio::test]
async fn deleted_event_carries_last_value_at_the_deletion_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db"), options()).expect("open");
    let kv = store.create("/d", b"last".to_vec()).await.expect("create");
    let (prev, at) = store.delete("/d", Some(kv.mod_revision)).await.expect("delete");
    assert_eq!(prev, kv);
    let mut watch = store.watch("/d", kv.mod_revision).await.expect("watch");
    let event = watch.next().await.expect("event").expect("ok");
    assert_eq!(event.kind, EventKind::Deleted);
    assert_eq!(
        (event.kv.value.as_slice(), event.kv.mod_revision, event.kv.create_revision),
        (&b"last"[..], at, kv.create_revision)
    );
    assert_eq!(event.prev, Some(kv));
}
