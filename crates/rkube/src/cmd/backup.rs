//! `rkube backup`, `rkube restore` and `rkube migrate --to-etcd`: the command lines of `rkube_backup`.

use std::path::{Path, PathBuf};

use crate::store::{StoreArgs, StoreConfig};

/// Flags of `rkube backup`.
#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {
    /// The server's data directory: its PKI (server/tls) is backed up, and its embedded store unless
    /// --etcd-endpoints names the etcd the server uses.
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    /// The archive to write (a tar with a manifest, the PKI and the objects; it holds private keys: keep it safe).
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Flags of `rkube restore`.
#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// The archive written by `rkube backup`.
    #[arg(short = 'i', long)]
    input: PathBuf,
    /// The data directory of the server to bring back (a new one; see --force).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    /// Replace the certificates and embedded store already in --data-dir (an etcd prefix must still be empty).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Flags of `rkube migrate`.
#[derive(clap::Args, Debug)]
pub(crate) struct MigrateArgs {
    /// Copy the embedded store into the etcd given by --etcd-endpoints (the only migration there is).
    #[arg(long)]
    to_etcd: bool,
    /// The server's data directory, whose embedded store is copied (stop the server first).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube")]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

fn spec(store: &StoreArgs, data_dir: &Path) -> anyhow::Result<rkube_backup::StoreSpec> {
    let mut problems = Vec::new();
    let config = store.validate(data_dir, &mut problems);
    let config = match config {
        Some(c) if problems.is_empty() => c,
        _ => anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - ")),
    };
    let prefix = config.key_prefix().to_owned();
    let backend = match config {
        StoreConfig::Sqlite { path, .. } => rkube_backup::Backend::Sqlite(path),
        StoreConfig::Etcd { config, .. } => rkube_backup::Backend::Etcd(config),
    };
    Ok(rkube_backup::StoreSpec { backend, prefix })
}

/// The store flags to start the server with, as the user would type them.
fn server_flags(store: &StoreArgs, data_dir: &Path) -> String {
    let mut flags = format!("--data-dir {}", data_dir.display());
    if !store.etcd_endpoints.is_empty() {
        flags.push_str(&format!(" --etcd-endpoints {}", store.etcd_endpoints.join(",")));
        for (flag, file) in [
            ("--etcd-cafile", &store.etcd_cafile),
            ("--etcd-certfile", &store.etcd_certfile),
            ("--etcd-keyfile", &store.etcd_keyfile),
        ] {
            if let Some(file) = file {
                flags.push_str(&format!(" {flag} {}", file.display()));
            }
        }
    }
    if store.etcd_prefix != "/registry" {
        flags.push_str(&format!(" --etcd-prefix {}", store.etcd_prefix));
    }
    flags
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let options = rkube_backup::BackupOptions {
        data_dir: args.data_dir.clone(),
        store: spec(&args.store, &args.data_dir)?,
        output: args.output.clone(),
        force: args.force,
        quiet: false,
    };
    let s = runtime()?.block_on(rkube_backup::backup(&options))?;
    println!(
        "backup written to {}: {} objects at revision {} and the PKI of {}, {:.1} MiB in {:.1} s",
        args.output.display(),
        s.objects,
        s.revision,
        args.data_dir.display(),
        s.bytes as f64 / (1024.0 * 1024.0),
        s.elapsed.as_secs_f64()
    );
    Ok(())
}

pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let options = rkube_backup::RestoreOptions {
        input: args.input.clone(),
        data_dir: args.data_dir.clone(),
        store: spec(&args.store, &args.data_dir)?,
        force: args.force,
        quiet: false,
    };
    let etcd = matches!(options.store.backend, rkube_backup::Backend::Etcd(_));
    let s = runtime()?.block_on(rkube_backup::restore(&options))?;
    println!(
        "restored {} objects (revision {}) and the PKI into {} in {:.1} s. Start the server with:\n  rkube server {}",
        s.objects,
        s.revision,
        args.data_dir.display(),
        s.elapsed.as_secs_f64(),
        server_flags(&args.store, &args.data_dir)
    );
    if etcd {
        println!(
            "etcd assigned the objects new revisions, so their resourceVersions changed: restart the agents and any \
             client holding a watch, so that they list again."
        );
    }
    Ok(())
}

pub(crate) fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if !args.to_etcd {
        anyhow::bail!("say where to: `rkube migrate --to-etcd --etcd-endpoints URL` (the only migration there is)");
    }
    if args.store.etcd_endpoints.is_empty() {
        anyhow::bail!(
            "--to-etcd needs --etcd-endpoints URL[,URL...] (and --etcd-cafile/--etcd-certfile/--etcd-keyfile for TLS)"
        );
    }
    let options = rkube_backup::MigrateOptions {
        data_dir: args.data_dir.clone(),
        target: spec(&args.store, &args.data_dir)?,
        quiet: false,
    };
    let s = runtime()?.block_on(rkube_backup::migrate(&options))?;
    let db = args.data_dir.join("server/db/state.db");
    println!(
        "migrated {} objects (embedded store revision {}) to etcd at {} in {:.1} s; counts verified.\n\
         Start the server on etcd with:\n  rkube server {}\n\
         The objects have new resourceVersions (etcd's revisions): restart the agents and clients so they list \
         again. {} is no longer used; remove it once the server runs on etcd.",
        s.objects,
        s.revision,
        args.store.etcd_endpoints.join(","),
        s.elapsed.as_secs_f64(),
        server_flags(&args.store, &args.data_dir),
        db.display()
    );
    Ok(())
}
