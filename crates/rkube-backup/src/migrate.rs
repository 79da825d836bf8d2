//! `rkube migrate --to-etcd`: every object of a stopped server's embedded store into an empty etcd prefix, with
//! the count checked afterwards.

use std::path::PathBuf;
use std::time::Instant;

use crate::archive;
use crate::datadir;
use crate::error::{Error, Result, store};
use crate::ops::{Summary, scratch_in};
use crate::progress::say;
use crate::{Backend, StoreSpec, source, target};

/// What `rkube migrate --to-etcd` does.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The server's data directory (its embedded store is the source; scratch files go here).
    pub data_dir: PathBuf,
    /// The etcd store and prefix to copy into (the prefix must be empty); the source uses the same prefix.
    pub target: StoreSpec,
    /// No progress on stderr.
    pub quiet: bool,
}

/// Copies every object of the embedded store in `data_dir` into an empty etcd prefix and checks the count.
pub async fn migrate(options: &MigrateOptions) -> Result<Summary> {
    let started = Instant::now();
    let Backend::Etcd(config) = &options.target.backend else {
        return Err(Error::Refused("rkube migrate copies into etcd: give --etcd-endpoints".into()));
    };
    let db = datadir::store_file(&options.data_dir);
    if !db.is_file() {
        return Err(Error::Refused(format!(
            "there is no embedded store at {}: is {} the server's --data-dir?",
            db.display(),
            options.data_dir.display()
        )));
    }
    let pids = datadir::holders(&db);
    if !pids.is_empty() {
        return Err(Error::Refused(format!(
            "{} is in use by {}: stop the rkube server first, so that nothing is written after the copy",
            db.display(),
            datadir::describe_holders(&pids)
        )));
    }
    let etcd = rkube_store_etcd::EtcdStore::connect(config.clone())
        .await
        .map_err(store(format!("connecting to etcd at {}", config.endpoints.join(","))))?;
    let range = options.target.range();
    target::check_empty(&etcd, &range).await?;
    let scratch = scratch_in(&options.data_dir, ".rkube-migrate-")?;
    say(options.quiet, &format!("[1/3] reading the embedded store {}", db.display()));
    let source_spec = StoreSpec { backend: Backend::Sqlite(db.clone()), prefix: options.target.prefix.clone() };
    let kv_path = scratch.path().join(archive::STORE_KV);
    let exported = source::export(&source_spec, &kv_path, options.quiet).await?;
    if exported.count == 0 {
        return Err(Error::Refused(format!(
            "the embedded store {} holds no objects under {range}: nothing to migrate; give the --etcd-prefix the \
             server was started with",
            db.display()
        )));
    }
    say(options.quiet, &format!("[2/3] writing {} objects to etcd under {range}", exported.count));
    let prefix = options.target.prefix.as_str();
    let written = target::into_etcd(&kv_path, prefix, prefix, &etcd, options.quiet).await?;
    say(options.quiet, "[3/3] verifying");
    let counted = target::count_keys(&etcd, &range).await?;
    if written != exported.count || counted != exported.count {
        return Err(Error::Refused(format!(
            "verification failed: {} objects read from the embedded store, {written} written, {counted} found in etcd \
             under {range}; etcd's prefix was changed by someone else meanwhile? Delete the prefix \
             (`etcdctl del --prefix {range}`) and run the migration again",
            exported.count
        )));
    }
    Ok(Summary { objects: counted, revision: exported.revision, manifest: None, bytes: 0, elapsed: started.elapsed() })
}
