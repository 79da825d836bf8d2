//! The shared backend conformance suite of `rkube_store`, run against a fresh SQLite store per test.

use rkube_store_sqlite::{SqliteOptions, SqliteStore};

rkube_store::conformance_tests!(|| async {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db"), SqliteOptions::default()).expect("open");
    rkube_store::conformance::Fixture { store: std::sync::Arc::new(store), guard: Box::new(dir) }
});
