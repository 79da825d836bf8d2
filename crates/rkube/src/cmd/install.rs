//! `rkube install` and `rkube uninstall` (issue 8): not built yet.

/// Flags of `rkube install`.
#[derive(clap::Args, Debug)]
pub(crate) struct InstallArgs {}

/// Flags of `rkube uninstall`.
#[derive(clap::Args, Debug)]
pub(crate) struct UninstallArgs {}

pub(crate) fn run(_args: InstallArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube install` is not built yet")
}

pub(crate) fn uninstall(_args: UninstallArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube uninstall` is not built yet")
}
