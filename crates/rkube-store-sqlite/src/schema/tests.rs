//! Opening files that are not (yet) good rkube stores: each fails with a clear error and leaves the file alone.

use std::path::{Path, PathBuf};

use rkube_store::{Error, Store};

use crate::{SqliteOptions, SqliteStore};

fn open(path: &Path) -> rkube_store::Result<SqliteStore> {
    SqliteStore::open(path, SqliteOptions::default())
}

/// The file's bytes and the names of its siblings, to prove a failed open changed nothing.
fn snapshot(path: &Path) -> (Vec<u8>, Vec<PathBuf>) {
    let bytes = std::fs::read(path).expect("read file");
    let parent = path.parent().expect("parent");
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(parent).expect("read dir").map(|e| e.expect("entry").path()).collect();
    names.sort();
    (bytes, names)
}

fn assert_corrupt(err: Error, path: &Path, words: &[&str]) {
    let text = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "want Corrupt, got {err:?}");
    assert!(text.contains(&path.display().to_string()), "error does not name the file: {text}");
    for word in words {
        assert!(text.contains(word), "error lacks {word:?}: {text}");
    }
}

#[test]
fn random_bytes_are_corrupt_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let noise: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &noise).expect("write");
    let before = snapshot(&path);
    let err = open(&path).err().expect("opening noise must fail");
    assert_corrupt(err, &path, &["backup", "move it aside"]);
    assert_eq!(snapshot(&path), before);
}

#[test]
fn text_file_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    std::fs::write(&path, "this is not a database\n").expect("write");
    let before = snapshot(&path);
    let err = open(&path).err().expect("opening a text file must fail");
    assert_corrupt(err, &path, &["not an SQLite database"]);
    assert_eq!(snapshot(&path), before);
}

#[test]
fn damaged_database_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(open(&path).expect("create"));
    // Keep the header, wreck the schema page that follows it.
    let mut bytes = std::fs::read(&path).expect("read");
    for b in bytes.iter_mut().skip(100).take(3000) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).expect("write");
    let err = open(&path).err().expect("opening a damaged database must fail");
    assert_corrupt(err, &path, &["backup"]);
}

#[test]
fn foreign_sqlite_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create foreign db");
        conn.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'x');",
        )
        .expect("fill foreign db");
    }
    let before = snapshot(&path);
    let err = open(&path).err().expect("opening a foreign database must fail");
    assert_corrupt(err, &path, &["not an rkube store", "accounts", "untouched"]);
    assert_eq!(snapshot(&path), before);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(open(&path).expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("reopen");
        conn.execute_batch("PRAGMA user_version = 99;").expect("bump version");
    }
    let err = open(&path).err().expect("opening a newer schema must fail");
    assert_corrupt(err, &path, &["schema version 99", "newer rkube"]);
}

#[test]
fn path_under_a_regular_file_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let path = file.join("sub").join("state.db");
    let err = open(&path).err().expect("must fail");
    let text = err.to_string();
    assert!(err.is_unavailable(), "want Unavailable, got {err:?}");
    assert!(text.contains(&path.display().to_string()) && text.contains("writable"), "{text}");
}

#[test]
fn directory_path_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = open(dir.path()).err().expect("must fail");
    let text = err.to_string();
    assert!(err.is_unavailable(), "want Unavailable, got {err:?}");
    assert!(text.contains(&dir.path().display().to_string()) && text.contains("is a directory"), "{text}");
}

#[tokio::test]
async fn new_store_in_new_directory_and_zero_length_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/state.db");
    let store = open(&nested).expect("create with parents");
    assert_eq!(store.current_revision().await.expect("rev"), 0);
    assert_eq!(store.describe(), format!("sqlite {}", nested.display()));

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("touch");
    let store = open(&empty).expect("initialise a zero-length file");
    store.create("/k", b"v".to_vec()).await.expect("create");
}

#[tokio::test]
async fn reopen_keeps_data_and_layout_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = open(&path).expect("create");
    store.create("/a", b"1".to_vec()).await.expect("create");
    drop(store);
    let store = open(&path).expect("reopen");
    assert_eq!(store.get("/a").await.expect("get").map(|kv| kv.value), Some(b"1".to_vec()));
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).expect("app id");
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
    assert_eq!(app_id, super::APPLICATION_ID);
    assert_eq!(mode, "wal");
}
