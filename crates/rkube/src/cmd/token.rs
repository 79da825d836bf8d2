//! `rkube token` (issue 8): not built yet.

/// Flags of `rkube token`.
#[derive(clap::Args, Debug)]
pub(crate) struct TokenArgs {}

pub(crate) fn run(_args: TokenArgs) -> anyhow::Result<()> {
    anyhow::bail!("`rkube token` is not built yet")
}
