//! `rkube doctor`: the host checks of `rkube-doctor`, printed as a table or JSON. Exit code 0 when nothing
//! FAILs (WARNs are advice, as kubeadm's preflight warnings are), 1 when something FAILs.

/// Flags of `rkube doctor`.
pub(crate) type Args = rkube_doctor::cli::Args;

/// Prints the report; an error (exit code 1) when any check FAILs.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(rkube_doctor::cli::run(&args)) {
        0 => Ok(()),
        _ => anyhow::bail!("this host is not ready for rkube: fix each FAIL above (its remedy is under it)"),
    }
}
