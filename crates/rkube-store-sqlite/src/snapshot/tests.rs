//! Export from a store another handle is writing, and import into a new file that keeps every revision.

use std::time::Duration;

use rkube_store::{Error, ListOptions, Store};

use super::{export, import};
use crate::{SqliteOptions, SqliteStore};

fn options() -> SqliteOptions {
    SqliteOptions { compaction_interval: Duration::ZERO, ..SqliteOptions::default() }
}

#[tokio::test]
async fn export_then_import_keeps_keys_values_and_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src.db");
    let store = SqliteStore::open(&src, options()).expect("open");
    let a = store.create("/registry/a", b"1".to_vec()).await.expect("create a");
    let a = store.update("/registry/a", b"2".to_vec(), a.mod_revision).await.expect("update a");
    store.create("/registry/gone", b"x".to_vec()).await.expect("create");
    store.delete("/registry/gone", None).await.expect("delete");
    let b = store.create("/registry/b", b"3".to_vec()).await.expect("create b");
    store.create("/other/c", b"not exported".to_vec()).await.expect("create c");
    let current = store.current_revision().await.expect("revision");

    let mut got = Vec::new();
    let info = export(&src, "/registry/", |kv| {
        got.push(kv);
        Ok(())
    })
    .expect("export while the store is open");
    assert_eq!(info.revision, current);
    assert_eq!(info.count, 2);
    assert_eq!(got, vec![a.clone(), b.clone()], "live keys under the prefix, sorted, with their revisions");

    let dst = dir.path().join("dst.db");
    let n = import(&dst, info.revision, got.iter().cloned().map(Ok)).expect("import");
    assert_eq!(n, 2);
    assert!(import(&dst, info.revision, Vec::new()).is_err(), "an import never writes over a file");
    let restored = SqliteStore::open(&dst, options()).expect("open the imported store");
    assert_eq!(restored.current_revision().await.expect("rev"), current);
    assert_eq!(restored.compacted_revision().await.expect("compacted"), current);
    assert_eq!(restored.get("/registry/a").await.expect("get"), Some(a.clone()));
    assert_eq!(restored.get("/registry/b").await.expect("get"), Some(b));
    let old = restored.list("/registry/", ListOptions { revision: Some(a.mod_revision), ..Default::default() }).await;
    assert!(matches!(old, Err(Error::Expired { .. })), "history before the snapshot is gone: {old:?}");
    // Writes go on above the snapshot's revision, and compare-and-swap uses the kept revisions.
    let next = restored.update("/registry/a", b"4".to_vec(), a.mod_revision).await.expect("update restored");
    assert_eq!(next.mod_revision, current + 1);
}

#[test]
fn export_of_a_missing_store_names_the_remedy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = export(&dir.path().join("none.db"), "/", |_| Ok(())).expect_err("no store");
    assert!(err.to_string().contains("--data-dir"), "{err}");
}

#[test]
fn import_refuses_revisions_beyond_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = rkube_store::KeyValue { key: "/k".into(), value: vec![], create_revision: 9, mod_revision: 9 };
    let err = import(&dir.path().join("x.db"), 5, [Ok(kv)]).expect_err("revision 9 > 5");
    assert!(err.to_string().contains("outside"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_during_writes_is_exactly_the_state_at_its_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("busy.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path, options()).expect("open"));
    for i in 0..200 {
        store.create(&format!("/k/{i:05}"), vec![b'v'; 512]).await.expect("seed");
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut created = Vec::new();
            for i in 200..3000 {
                created.push(store.create(&format!("/k/{i:05}"), vec![b'v'; 512]).await.expect("create").mod_revision);
            }
            created
        })
    };
    let exporting = path.clone();
    let (info, revs) = tokio::task::spawn_blocking(move || {
        let mut revs = Vec::new();
        let info = export(&exporting, "/k/", |kv| {
            revs.push(kv.mod_revision);
            Ok(())
        })
        .expect("export");
        (info, revs)
    })
    .await
    .expect("join");
    let created = writer.await.expect("writer");
    // Every key is created once and never changed: the state at revision R is exactly the keys created at or before R.
    let expected = 200 + created.iter().filter(|r| **r <= info.revision).count() as u64;
    assert_eq!(info.count, expected, "the export holds exactly the keys of its revision");
    assert!(revs.iter().all(|r| *r <= info.revision), "nothing written after the snapshot's revision");
}
