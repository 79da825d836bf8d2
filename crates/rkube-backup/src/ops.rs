//! What the three commands share: their summary and the scratch directory each works in beside its destination,
//! moving the result into place only when everything succeeded. The commands are in `backup.rs`, `restore.rs` and
//! `migrate.rs`.

use std::path::Path;
use std::time::Duration;

use crate::error::{Result, io};
use crate::manifest::Manifest;

/// What a command did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Objects (store keys) copied.
    pub objects: u64,
    /// The snapshot's revision.
    pub revision: i64,
    /// The archive's manifest (backup and restore).
    pub manifest: Option<Manifest>,
    /// The archive's size in bytes (backup).
    pub bytes: u64,
    /// How long the command took.
    pub elapsed: Duration,
}

pub(crate) fn scratch_in(dir: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    tempfile::Builder::new().prefix(prefix).tempdir_in(dir).map_err(io("creating a scratch directory in", dir))
}
