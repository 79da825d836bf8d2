//! `rkube backup`: a consistent snapshot of the store and the server's PKI into one archive, written beside the
//! output under a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::archive;
use crate::datadir;
use crate::error::{Error, Result, io};
use crate::manifest::{self, Manifest};
use crate::ops::{Summary, scratch_in};
use crate::progress::say;
use crate::{StoreSpec, source};

/// What `rkube backup` does.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The server's data directory (for its PKI).
    pub data_dir: PathBuf,
    /// The store to snapshot.
    pub store: StoreSpec,
    /// The archive to write.
    pub output: PathBuf,
    /// Overwrite `output` if it exists.
    pub force: bool,
    /// No progress on stderr.
    pub quiet: bool,
}

/// Writes a consistent snapshot of the store and the PKI into `options.output`.
pub async fn backup(options: &BackupOptions) -> Result<Summary> {
    let started = Instant::now();
    let out = &options.output;
    if out.exists() && !options.force {
        return Err(Error::Refused(format!(
            "{} already exists; give another -o, or --force to overwrite it",
            out.display()
        )));
    }
    let tls = datadir::tls_dir(&options.data_dir);
    if !datadir::non_empty(&tls) {
        return Err(Error::Refused(format!(
            "there are no certificates in {}: is {} the server's --data-dir?",
            tls.display(),
            options.data_dir.display()
        )));
    }
    let pki = archive::read_pki(&tls)?;
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let scratch = scratch_in(&out_dir, ".rkube-backup-")?;
    say(
        options.quiet,
        &format!("[1/2] store: reading a snapshot ({} under {})", options.store.kind(), options.store.range()),
    );
    let kv_path = scratch.path().join(archive::STORE_KV);
    let exported = source::export(&options.store, &kv_path, options.quiet).await?;
    if exported.count == 0 {
        // A server always stores objects (namespaces, RBAC): nothing at all means the wrong store or prefix.
        return Err(Error::Refused(format!(
            "the store holds no objects under {}: give the --data-dir, --etcd-endpoints and --etcd-prefix the \
             server runs with",
            options.store.range()
        )));
    }
    let mut files: BTreeMap<String, manifest::FileEntry> =
        pki.iter().map(|f| (format!("pki/{}", f.name), archive::entry_of(&f.data))).collect();
    files.insert(
        archive::STORE_KV.to_owned(),
        manifest::FileEntry { size: exported.size, sha256: exported.sha256.clone() },
    );
    let manifest = Manifest {
        format: manifest::FORMAT.to_owned(),
        format_version: manifest::FORMAT_VERSION,
        rkube_version: env!("CARGO_PKG_VERSION").to_owned(),
        store: options.store.kind().to_owned(),
        prefix: options.store.prefix.trim_end_matches('/').to_owned(),
        revision: exported.revision,
        objects: exported.count,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        files,
    };
    say(
        options.quiet,
        &format!(
            "[2/2] archive: {} objects at revision {} and {} PKI files",
            exported.count,
            exported.revision,
            pki.len()
        ),
    );
    let tmp = tempfile::Builder::new()
        .prefix(".rkube-backup-")
        .tempfile_in(&out_dir)
        .map_err(io("creating a file in", &out_dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(tmp.path(), perms).map_err(io("setting permissions of", tmp.path()))?;
    }
    let kv = std::fs::File::open(&kv_path).map_err(io("opening", &kv_path))?;
    archive::write(tmp.as_file(), &manifest, &pki, kv, exported.size).map_err(io("writing", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io("syncing", tmp.path()))?;
    let bytes = tmp.as_file().metadata().map_err(io("reading", tmp.path()))?.len();
    let persisted = if options.force { tmp.persist(out) } else { tmp.persist_noclobber(out) };
    persisted.map_err(|e| io("writing", out)(e.error))?;
    Ok(Summary {
        objects: exported.count,
        revision: exported.revision,
        manifest: Some(manifest),
        bytes,
        elapsed: started.elapsed(),
    })
}
