//! Subcommands that exist in the CLI but are not built yet: they say so plainly and exit non-zero.

/// Whatever follows an unbuilt subcommand is accepted and ignored, so `--help` of the parent still lists it.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub(crate) fn fail(name: &str, what: &str) -> anyhow::Result<()> {
    anyhow::bail!("`rkube {name}` is not built yet: {what} is still to come; see the status table in README.md")
}
