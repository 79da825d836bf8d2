//! `rkube backup`, `rkube restore` and `rkube migrate` (issue 8): not built yet.

/// Flags of `rkube backup`.
#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {}

/// Flags of `rkube restore`.
#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {}

/// Flags of `rkube migrate`.
#[derive(clap::Args, Debug)]
pub(crate) struct MigrateArgs {}

pub(crate) fn backup(_args: BackupArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube backup` is not built yet")
}

pub(crate) fn restore(_args: RestoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube restore` is not built yet")
}

pub(crate) fn migrate(_args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube migrate` is not built yet")
}
