//! Benchmarks that measure rkube against the real parts it runs with, and write their figures into BENCHMARKS.md.
//! Numbers are measured here, never asserted in tests.

pub mod api;
pub mod node;
pub mod report;
pub mod scheduling;
mod server;
mod stats;
pub mod store;
