//! `rkube restore`: an archive into a fresh data directory (PKI, and the objects for the embedded store) or an
//! empty etcd prefix, checked in a scratch directory first.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::archive;
use crate::datadir;
use crate::error::{Error, Result, io, store};
use crate::ops::{Summary, scratch_in};
use crate::progress::say;
use crate::{Backend, StoreSpec, target};

/// What `rkube restore` does.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The archive written by `rkube backup`.
    pub input: PathBuf,
    /// The data directory to restore the PKI (and the embedded store) into.
    pub data_dir: PathBuf,
    /// The store to restore the objects into (an etcd prefix must be empty).
    pub store: StoreSpec,
    /// Replace the PKI and embedded store already in `data_dir`.
    pub force: bool,
    /// No progress on stderr.
    pub quiet: bool,
}

/// Restores an archive into a fresh data directory (PKI and, for the embedded store, the objects) or an empty
/// etcd prefix. A data directory this call created is removed again if the restore fails.
pub async fn restore(options: &RestoreOptions) -> Result<Summary> {
    let existed = options.data_dir.exists();
    let result = restore_into(options).await;
    if result.is_err() && !existed {
        // Only if still empty: remove_dir refuses otherwise.
        let _ = std::fs::remove_dir(&options.data_dir);
    }
    result
}

async fn restore_into(options: &RestoreOptions) -> Result<Summary> {
    let started = Instant::now();
    let input = &options.input;
    if !input.is_file() {
        return Err(Error::Refused(format!("{} does not exist or is not a file", input.display())));
    }
    let data_dir = &options.data_dir;
    let tls = datadir::tls_dir(data_dir);
    let db_file = match &options.store.backend {
        Backend::Sqlite(path) => Some(path.clone()),
        Backend::Etcd(_) => None,
    };
    let mut present = Vec::new();
    if datadir::non_empty(&tls) {
        present.push(format!("certificates in {}", tls.display()));
    }
    if let Some(db) = db_file.as_ref().filter(|db| db.exists()) {
        present.push(format!("an embedded store {}", db.display()));
        let pids = datadir::holders(db);
        if !pids.is_empty() {
            return Err(Error::Refused(format!(
                "{} is in use by {}: stop the rkube server on {} before restoring into it",
                db.display(),
                datadir::describe_holders(&pids),
                data_dir.display()
            )));
        }
    }
    if !present.is_empty() && !options.force {
        return Err(Error::Refused(format!(
            "{} already holds a server's state ({}); restore into a new --data-dir, or pass --force to replace it",
            data_dir.display(),
            present.join(", ")
        )));
    }
    let scratch = scratch_in(data_dir, ".rkube-restore-")?;
    say(options.quiet, &format!("[1/3] archive: checking {}", input.display()));
    let extracted = archive::extract(input, scratch.path())?;
    let m = &extracted.manifest;
    say(
        options.quiet,
        &format!(
            "[2/3] store: {} objects ({} backup of {} at revision {}, taken {}) into {} under {}",
            m.objects,
            m.store,
            m.prefix,
            m.revision,
            m.created,
            options.store.kind(),
            options.store.range()
        ),
    );
    // Checked before any store is written, so a bad count never leaves objects behind in etcd.
    let held = target::count(&extracted.store_kv)?;
    if u64::try_from(held).ok() != Some(m.objects) {
        return Err(Error::Archive {
            path: input.clone(),
            message: format!("the manifest counts {} objects but the archive holds {held}", m.objects),
        });
    }
    let to = options.store.prefix.as_str();
    let scratch_db = scratch.path().join("db").join("state.db");
    let objects = match &options.store.backend {
        Backend::Sqlite(_) => {
            std::fs::create_dir_all(scratch.path().join("db")).map_err(io("creating", scratch.path()))?;
            let (kv, prefix, rev, db, quiet) =
                (extracted.store_kv.clone(), m.prefix.clone(), m.revision, scratch_db.clone(), options.quiet);
            let to = to.to_owned();
            tokio::task::spawn_blocking(move || target::into_sqlite(&kv, &prefix, &to, rev, &db, quiet))
                .await
                .map_err(|e| Error::Refused(format!("the import task failed: {e}")))??
        }
        Backend::Etcd(config) => {
            let etcd = rkube_store_etcd::EtcdStore::connect(config.clone())
                .await
                .map_err(store(format!("connecting to etcd at {}", config.endpoints.join(","))))?;
            target::into_etcd(&extracted.store_kv, &m.prefix, to, &etcd, options.quiet).await?
        }
    };
    if objects != m.objects {
        return Err(Error::Archive {
            path: input.clone(),
            message: format!("the manifest counts {} objects but the archive holds {objects}", m.objects),
        });
    }
    say(options.quiet, &format!("[3/3] data directory: certificates into {}", tls.display()));
    let server = data_dir.join("server");
    std::fs::create_dir_all(&server).map_err(io("creating", &server))?;
    // Whatever was there (only with --force) goes into the scratch directory, removed with it.
    if tls.exists() {
        std::fs::rename(&tls, scratch.path().join("old-tls")).map_err(io("moving aside", &tls))?;
    }
    std::fs::rename(&extracted.tls_dir, &tls).map_err(io("moving into place", &tls))?;
    if let Some(db) = &db_file {
        let db_dir = db.parent().map(Path::to_path_buf).unwrap_or_else(|| datadir::db_dir(data_dir));
        if db_dir.exists() {
            std::fs::rename(&db_dir, scratch.path().join("old-db")).map_err(io("moving aside", &db_dir))?;
        }
        std::fs::rename(scratch.path().join("db"), &db_dir).map_err(io("moving into place", &db_dir))?;
    }
    Ok(Summary {
        objects,
        revision: m.revision,
        manifest: Some(extracted.manifest.clone()),
        bytes: 0,
        elapsed: started.elapsed(),
    })
}
