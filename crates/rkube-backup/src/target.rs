//! Writing a snapshot's objects into a store: a new SQLite file that keeps every revision, or an empty etcd prefix
//! (where etcd assigns new revisions). Keys move from the archive's prefix to the target's.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rkube_store::{KeyValue, ListOptions, Store};

use crate::error::{Error, Result, io, store};
use crate::progress::Progress;
use crate::records::RecordReader;

/// Keys sent to etcd per `create_many` call (it splits them into transactions itself).
const BATCH: usize = 1000;

/// The objects of a `store.kv` file with their keys moved from prefix `from` to prefix `to`.
pub(crate) fn read(store_kv: &Path, from: &str, to: &str) -> Result<impl Iterator<Item = Result<KeyValue>>> {
    let file = File::open(store_kv).map_err(io("opening", store_kv))?;
    let reader = RecordReader::new(BufReader::new(file)).map_err(io("reading", store_kv))?;
    let (from, to) = (range(from), range(to));
    let path = store_kv.to_path_buf();
    Ok(reader.map(move |r| {
        let mut kv = r.map_err(io("reading", &path))?;
        let Some(rest) = kv.key.strip_prefix(&from) else {
            return Err(Error::Refused(format!(
                "the backup holds key {:?} outside its prefix {from}: the archive is inconsistent",
                kv.key
            )));
        };
        kv.key = format!("{to}{rest}");
        Ok(kv)
    }))
}

fn range(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// Whether the objects can keep their revisions in a new SQLite store: each `mod_revision` unique and within
/// `1..=revision` (true for any snapshot rkube writes; etcd could in principle share a revision between keys of
/// one transaction, which rkube never writes).
fn revisions_keepable(store_kv: &Path, revision: i64) -> Result<bool> {
    let mut seen = HashSet::new();
    for kv in read(store_kv, "/", "/")? {
        let kv = kv?;
        if kv.mod_revision < 1 || kv.mod_revision > revision || !seen.insert(kv.mod_revision) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes the objects into a new SQLite store file `db` (which must not exist); returns how many.
pub(crate) fn into_sqlite(store_kv: &Path, from: &str, to: &str, revision: i64, db: &Path, quiet: bool) -> Result<u64> {
    let keep = revisions_keepable(store_kv, revision)?;
    let mut progress = Progress::new("objects written", None, quiet);
    let mut failed = None;
    let mut next = revision;
    let items = read(store_kv, from, to)?.map_while(|r| match r {
        Ok(mut kv) => {
            if !keep {
                // Revisions above every old one, so clients holding old resourceVersions relist.
                next += 1;
                kv.mod_revision = next;
                kv.create_revision = next;
            }
            progress.tick();
            Some(Ok(kv))
        }
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    // `next` is only final once the iterator is drained, so with new revisions the store's revision is the
    // snapshot's plus the object count (counted first).
    let final_revision = if keep { revision } else { revision + count(store_kv)? };
    let written = rkube_store_sqlite::snapshot::import(db, final_revision, items)
        .map_err(store(format!("writing the embedded store {}", db.display())));
    if let Some(e) = failed {
        return Err(e);
    }
    written
}

/// The number of objects in a `store.kv` file (reading every record, so damage shows here too).
pub(crate) fn count(store_kv: &Path) -> Result<i64> {
    let mut n = 0;
    for kv in read(store_kv, "/", "/")? {
        kv?;
        n += 1;
    }
    Ok(n)
}

/// Fails unless `s` holds no key under `range`, naming the remedy.
pub(crate) async fn check_empty(s: &dyn Store, range: &str) -> Result<()> {
    let page = s
        .list(range, ListOptions { limit: Some(1), ..Default::default() })
        .await
        .map_err(store(format!("reading {range} from {}", s.describe())))?;
    if let Some(kv) = page.items.first() {
        return Err(Error::Refused(format!(
            "{} already holds keys under {range} (e.g. {}); rkube only restores or migrates into an empty prefix: \
             give another --etcd-prefix, or delete those keys first (`etcdctl del --prefix {range}`) if they are \
             not needed",
            s.describe(),
            kv.key
        )));
    }
    Ok(())
}

/// Counts the keys under `range`.
pub(crate) async fn count_keys(s: &dyn Store, range: &str) -> Result<u64> {
    let mut opts = ListOptions { limit: Some(5000), ..Default::default() };
    let mut n = 0u64;
    loop {
        let page = s.list(range, opts.clone()).await.map_err(store(format!("counting the keys under {range}")))?;
        n += page.items.len() as u64;
        if !page.more || page.items.is_empty() {
            return Ok(n);
        }
        opts.revision = Some(page.revision);
        opts.start = page.items.last().map(|kv| format!("{}\0", kv.key));
    }
}

/// Writes the objects under the (empty) prefix `to` of etcd; on failure removes what it wrote, so the prefix is
/// empty again. Returns how many objects were written.
pub(crate) async fn into_etcd(
    store_kv: &Path,
    from: &str,
    to: &str,
    etcd: &rkube_store_etcd::EtcdStore,
    quiet: bool,
) -> Result<u64> {
    check_empty(etcd, &range(to)).await?;
    let result = write_etcd(store_kv, from, to, etcd, quiet).await;
    if result.is_err() {
        // The prefix was empty before: removing everything under it undoes exactly this restore.
        if let Err(e) = etcd.delete_prefix(&range(to)).await {
            tracing::error!(error = %e, "could not remove the partly restored keys under {}", range(to));
        }
    }
    result
}

async fn write_etcd(
    store_kv: &Path,
    from: &str,
    to: &str,
    etcd: &rkube_store_etcd::EtcdStore,
    quiet: bool,
) -> Result<u64> {
    let mut progress = Progress::new("objects written", None, quiet);
    let mut batch = Vec::with_capacity(BATCH);
    for kv in read(store_kv, from, to)? {
        let kv = kv?;
        batch.push((kv.key, kv.value));
        if batch.len() == BATCH {
            etcd.create_many(&batch).await.map_err(store("writing objects to etcd"))?;
            progress.add(batch.len() as u64);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        etcd.create_many(&batch).await.map_err(store("writing objects to etcd"))?;
        progress.add(batch.len() as u64);
    }
    Ok(progress.done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordWriter;

    fn kv(key: &str, create: i64, rev: i64) -> KeyValue {
        KeyValue { key: key.into(), value: key.as_bytes().to_vec(), create_revision: create, mod_revision: rev }
    }

    fn write(path: &Path, items: &[KeyValue]) {
        let mut w = RecordWriter::new(std::fs::File::create(path).expect("create")).expect("new");
        for i in items {
            w.write(i).expect("write");
        }
        w.finish().expect("finish");
    }

    fn rows(db: &Path) -> Vec<KeyValue> {
        let mut got = Vec::new();
        rkube_store_sqlite::snapshot::export(db, "/", |kv| {
            got.push(kv);
            Ok(())
        })
        .expect("export");
        got
    }

    #[test]
    fn sqlite_keeps_unique_revisions_and_moves_the_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("store.kv");
        write(&kv_path, &[kv("/registry/a", 3, 5), kv("/registry/b", 7, 7)]);
        let db = dir.path().join("s.db");
        assert_eq!(into_sqlite(&kv_path, "/registry", "/custom", 9, &db, true).expect("import"), 2);
        assert_eq!(
            rows(&db),
            vec![kv("/custom/a", 3, 5), kv("/custom/b", 7, 7)]
                .into_iter()
                .map(|mut k| {
                    k.value = k.key.replace("/custom", "/registry").into_bytes();
                    k
                })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn shared_revisions_are_renumbered_above_the_snapshot() {
        // etcd gives every key of one transaction the same revision; SQLite needs one per key.
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("store.kv");
        write(&kv_path, &[kv("/registry/a", 4, 4), kv("/registry/b", 4, 4), kv("/registry/c", 6, 6)]);
        let db = dir.path().join("s.db");
        assert_eq!(into_sqlite(&kv_path, "/registry", "/registry", 6, &db, true).expect("import"), 3);
        let revs: Vec<(i64, i64)> = rows(&db).iter().map(|k| (k.create_revision, k.mod_revision)).collect();
        assert_eq!(revs, vec![(7, 7), (8, 8), (9, 9)]);
    }

    #[test]
    fn keys_outside_the_archives_prefix_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("store.kv");
        write(&kv_path, &[kv("/elsewhere/a", 1, 1)]);
        let err =
            into_sqlite(&kv_path, "/registry", "/registry", 1, &dir.path().join("s.db"), true).expect_err("outside");
        assert!(err.to_string().contains("outside its prefix"), "{err}");
    }
}
