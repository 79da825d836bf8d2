//! Reading a consistent snapshot of a store into `store.kv`: SQLite from one read transaction on the file (a running
//! server keeps writing; the reader sees the state at its start), etcd page by page at one revision.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rkube_store::{ListOptions, Store};

use crate::error::{Error, Result, io, store};
use crate::progress::Progress;
use crate::records::RecordWriter;
use crate::{Backend, StoreSpec};

/// Keys read from etcd per request.
const PAGE: usize = 500;
/// A snapshot read from etcd is started again this often when compaction overtakes it.
const ATTEMPTS: usize = 3;

/// What was written to the `store.kv` file.
pub(crate) struct Exported {
    pub(crate) revision: i64,
    pub(crate) count: u64,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// Writes every object of `spec` at one revision into a new file `out`.
pub(crate) async fn export(spec: &StoreSpec, out: &Path, quiet: bool) -> Result<Exported> {
    match &spec.backend {
        Backend::Sqlite(path) => {
            if !path.is_file() {
                return Err(Error::Refused(format!(
                    "there is no embedded store at {}: if the server runs on etcd, give the --etcd-endpoints (and \
                     --etcd-prefix) it uses; otherwise check --data-dir",
                    path.display()
                )));
            }
            let (path, range, out) = (path.clone(), spec.range(), out.to_path_buf());
            tokio::task::spawn_blocking(move || export_sqlite(&path, &range, &out, quiet))
                .await
                .map_err(|e| Error::Refused(format!("the export task failed: {e}")))?
        }
        Backend::Etcd(config) => {
            let etcd = rkube_store_etcd::EtcdStore::connect(config.clone())
                .await
                .map_err(store(format!("connecting to etcd at {}", config.endpoints.join(","))))?;
            export_store(&etcd, &spec.range(), out, quiet).await
        }
    }
}

fn create(out: &Path) -> Result<RecordWriter<BufWriter<File>>> {
    let _ = std::fs::remove_file(out);
    let file = crate::archive::secret_file(out).map_err(io("creating", out))?;
    RecordWriter::new(BufWriter::new(file)).map_err(io("writing", out))
}

fn finish(w: RecordWriter<BufWriter<File>>, out: &Path, revision: i64) -> Result<Exported> {
    let (file, count, size, sha256) = w.finish().map_err(io("writing", out))?;
    file.into_inner().map_err(|e| io("writing", out)(e.into_error()))?.sync_all().map_err(io("syncing", out))?;
    Ok(Exported { revision, count, size, sha256 })
}

fn export_sqlite(path: &Path, range: &str, out: &Path, quiet: bool) -> Result<Exported> {
    let mut w = create(out)?;
    let mut progress = Progress::new("objects read", None, quiet);
    let mut failed: Option<std::io::Error> = None;
    let info = rkube_store_sqlite::snapshot::export(path, range, |kv| {
        if let Err(e) = w.write(&kv) {
            failed = Some(e);
            // Stops the export; the IO error is reported below.
            return Err(rkube_store::Error::Backend {
                location: String::new(),
                message: "write failed".into(),
                source: None,
            });
        }
        progress.tick();
        Ok(())
    });
    if let Some(e) = failed {
        return Err(io("writing", out)(e));
    }
    let info = info.map_err(store(format!("reading the embedded store {}", path.display())))?;
    finish(w, out, info.revision)
}

/// Reads every key under `range` from any store at one revision, page by page; starts again (up to three times)
/// if compaction passes that revision meanwhile.
pub(crate) async fn export_store(s: &dyn Store, range: &str, out: &Path, quiet: bool) -> Result<Exported> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match export_once(s, range, out, quiet).await {
            Err(Error::Store { source: rkube_store::Error::Expired { .. }, .. }) if attempt < ATTEMPTS => {
                crate::progress::say(
                    quiet,
                    "  the store compacted past the snapshot's revision meanwhile; starting again",
                );
            }
            other => return other,
        }
    }
}

async fn export_once(s: &dyn Store, range: &str, out: &Path, quiet: bool) -> Result<Exported> {
    let mut w = create(out)?;
    let mut progress = Progress::new("objects read", None, quiet);
    let mut opts = ListOptions { limit: Some(PAGE), ..Default::default() };
    let revision = loop {
        let page =
            s.list(range, opts.clone()).await.map_err(store(format!("reading {range} from {}", s.describe())))?;
        for kv in &page.items {
            w.write(kv).map_err(io("writing", PathBuf::from(out)))?;
            progress.tick();
        }
        if !page.more || page.items.is_empty() {
            break page.revision;
        }
        opts.revision = Some(page.revision);
        opts.start = page.items.last().map(|kv| format!("{}\0", kv.key));
    };
    finish(w, out, revision)
}
