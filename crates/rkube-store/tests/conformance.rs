//! Runs the shared conformance suite against the in-memory backend.

use std::sync::Arc;

rkube_store::conformance_tests!(|| async {
    rkube_store::conformance::Fixture { store: Arc::new(rkube_store::memory::MemoryStore::new()), guard: Box::new(()) }
});
