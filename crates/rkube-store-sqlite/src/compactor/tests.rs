//! Compaction's effect on the log rows, the meta table and on watches.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use rkube_store::{Error, EventKind, ListOptions, Store};

use crate::watch::Registry;
use crate::{SqliteOptions, SqliteStore, schema};

fn options() -> SqliteOptions {
    SqliteOptions { compaction_interval: Duration::ZERO, ..SqliteOptions::default() }
}

/// (id, name, deleted) of every log row, in id order.
fn rows(path: &Path) -> Vec<(i64, String, bool)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT id, name, deleted FROM log ORDER BY id").expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query");
    rows.map(|r| r.expect("row")).collect()
}

fn meta(path: &Path, key: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).expect("meta")
}

#[tokio::test]
async fn compaction_deletes_superseded_rows_and_tombstones_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, options()).expect("open");
    let a1 = store.create("/a", b"a1".to_vec()).await.expect("create a"); // 1
    let a2 = store.update("/a", b"a2".to_vec(), a1.mod_revision).await.expect("update a"); // 2
    store.create("/b", b"b1".to_vec()).await.expect("create b"); // 3
    store.delete("/b", None).await.expect("delete b"); // 4
    store.create("/c", b"c1".to_vec()).await.expect("create c"); // 5
    store.update("/a", b"a3".to_vec(), a2.mod_revision).await.expect("update a"); // 6

    store.compact(5).await.expect("compact");
    // /a@1 is superseded by 2 (<= 5); /a@2 is the version at 5 and stays; /b@3 and its tombstone go.
    let names: Vec<(i64, String, bool)> = rows(&path);
    assert_eq!(names, vec![(2, "/a".to_owned(), false), (5, "/c".to_owned(), false), (6, "/a".to_owned(), false)]);
    assert_eq!((meta(&path, "compacted"), meta(&path, "purged")), (5, 5));
    assert_eq!(store.compacted_revision().await.expect("compacted"), 5);

    let at5 = store.list("/", ListOptions { revision: Some(5), ..Default::default() }).await.expect("list at 5");
    let got: Vec<(&str, &[u8])> = at5.items.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice())).collect();
    assert_eq!(got, vec![("/a", &b"a2"[..]), ("/c", &b"c1"[..])]);
    let old = store.list("/", ListOptions { revision: Some(4), ..Default::default() }).await;
    assert!(matches!(old, Err(Error::Expired { requested: 4, compacted: 5 })), "{old:?}");
    assert!(matches!(store.compact(5).await, Err(Error::Expired { .. })));
    assert!(matches!(store.compact(7).await, Err(Error::FutureRevision { requested: 7, current: 6 })));

    // A watch from the compacted revision still gets the modification with its previous value.
    let mut watch = store.watch("/a", 5).await.expect("watch");
    let event = watch.next().await.expect("event").expect("ok");
    assert_eq!((event.kind, event.kv.mod_revision), (EventKind::Modified, 6));
    assert_eq!(event.prev.map(|p| (p.value, p.mod_revision)), Some((b"a2".to_vec(), 2)));
}

#[tokio::test]
async fn revision_survives_compacting_every_row_and_chunks_cover_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, options()).expect("open");
    // More rows than one purge chunk, all superseded or deleted.
    let mut kv = store.create("/k", vec![0]).await.expect("create");
    for i in 0..2500u32 {
        kv = store.update("/k", i.to_le_bytes().to_vec(), kv.mod_revision).await.expect("update");
    }
    let (_, deleted_at) = store.delete("/k", None).await.expect("delete");
    store.compact(deleted_at).await.expect("compact");
    assert!(rows(&path).is_empty(), "every row was superseded or a tombstone");
    assert_eq!(store.current_revision().await.expect("rev"), deleted_at);
    drop(store);

    let store = SqliteStore::open(&path, options()).expect("reopen");
    assert_eq!(store.current_revision().await.expect("rev"), deleted_at);
    let again = store.create("/k", b"new".to_vec()).await.expect("recreate");
    assert_eq!(again.mod_revision, deleted_at + 1);
}

#[tokio::test]
async fn automatic_compaction_keeps_the_configured_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let opts = SqliteOptions {
        compaction_interval: Duration::from_millis(20),
        compaction_keep: 10,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, opts).expect("open");
    let mut kv = store.create("/k", vec![0]).await.expect("create");
    for i in 0..49u8 {
        kv = store.update("/k", vec![i], kv.mod_revision).await.expect("update");
    }
    assert_eq!(kv.mod_revision, 50);
    // Waits for the background compaction; bounded so a broken compactor fails instead of hanging.
    for _ in 0..500 {
        if store.compacted_revision().await.expect("compacted") == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.compacted_revision().await.expect("compacted"), 40);
}

#[tokio::test]
async fn a_watch_that_keeps_up_survives_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db"), options()).expect("open");
    let mut kv = store.create("/k", vec![0]).await.expect("create");
    for i in 0..20u8 {
        kv = store.update("/k", vec![i], kv.mod_revision).await.expect("update");
    }
    // The watch starts behind and compaction follows at once: the purge waits until the watch's task
    // has read (and buffered) the history, even though nobody reads the stream yet.
    let mut watch = store.watch("/", 0).await.expect("watch");
    store.compact(kv.mod_revision).await.expect("compact");
    for rev in 1..=kv.mod_revision {
        let event = watch.next().await.expect("event").expect("not expired");
        assert_eq!(event.revision(), rev);
    }
}

#[tokio::test]
async fn a_lagging_watch_ends_with_expired_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SqliteOptions { compaction_watch_grace: Duration::from_millis(50), ..options() };
    let store = SqliteStore::open(&dir.path().join("state.db"), opts).expect("open");
    let mut watch = store.watch("/", 0).await.expect("watch");
    // Far more events than the watch buffers, so its task stalls behind the unread stream.
    let mut kv = store.create("/k", vec![0]).await.expect("create");
    for i in 0..1500u32 {
        kv = store.update("/k", i.to_le_bytes().to_vec(), kv.mod_revision).await.expect("update");
    }
    store.compact(kv.mod_revision).await.expect("compact");
    let mut next = 1;
    loop {
        match watch.next().await.expect("the watch must end with an error, not silently") {
            Ok(event) => {
                assert_eq!(event.revision(), next, "events stay contiguous until the error");
                next += 1;
            }
            Err(Error::Expired { compacted, .. }) => {
                assert_eq!(compacted, kv.mod_revision);
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(next <= kv.mod_revision, "the watch lagged, so it cannot have seen everything");
    assert!(watch.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn purge_waits_for_lagging_watches_until_the_grace_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, options()).expect("open");
    let mut kv = store.create("/k", vec![0]).await.expect("create");
    for i in 0..9u8 {
        kv = store.update("/k", vec![i], kv.mod_revision).await.expect("update");
    }
    drop(store);
    let target = kv.mod_revision;
    let conn = schema::open_writer(&path, Duration::from_secs(1)).expect("open");
    let registry = Arc::new(Registry::default());
    let watch = registry.register(3);

    let mut patient =
        super::Compactor::new("test".into(), 0, Duration::from_secs(3600), registry.clone(), Default::default());
    patient.request(&conn, target, None);
    patient.step(&conn);
    assert_eq!(rows(&path).len(), 10, "nothing deleted while a watch is at 3 < {target}");
    assert_eq!((meta(&path, "compacted"), meta(&path, "purged")), (target, 0));
    assert!(patient.wait().is_some(), "the job is still pending");

    watch.store(target, Ordering::Release);
    patient.step(&conn);
    assert_eq!(rows(&path).len(), 1, "only the live version is left");
    assert_eq!(meta(&path, "purged"), target);
    assert!(patient.wait().is_none(), "the job is done");

    // With no grace left, a lagging watch does not hold the purge back (it will end with Expired).
    let kv = {
        let store = SqliteStore::open(&path, options()).expect("reopen");
        store.update("/k", b"x".to_vec(), kv.mod_revision).await.expect("update")
    };
    watch.store(0, Ordering::Release);
    let mut impatient = super::Compactor::new("test".into(), 0, Duration::ZERO, registry, Default::default());
    impatient.request(&conn, kv.mod_revision, None);
    impatient.step(&conn);
    assert_eq!(meta(&path, "purged"), kv.mod_revision);
    assert_eq!(rows(&path).len(), 1);
}
