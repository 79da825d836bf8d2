//! Simulated nodes.
//!
//! **Not built yet** (the crate is being written).
