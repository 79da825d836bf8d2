//! The backup file: a tar whose first member is `manifest.json`, then the PKI files under `pki/`, then `store.kv`.
//! Reading checks every member against the manifest's sizes and checksums while extracting into a scratch
//! directory, so a damaged, truncated or foreign file is refused before anything is put in place.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result, io};
use crate::manifest::{self, FileEntry, Manifest};
use crate::records::hex;

/// The member holding the objects.
pub(crate) const STORE_KV: &str = "store.kv";
/// The folder of PKI files inside the archive.
const PKI: &str = "pki/";
/// A manifest is a few kilobytes; anything far larger is not one.
const MAX_MANIFEST: u64 = 16 << 20;

/// One file of the server's PKI directory.
pub(crate) struct PkiFile {
    /// Its path relative to `<data-dir>/server/tls`.
    pub(crate) name: String,
    pub(crate) data: Vec<u8>,
}

/// Reads every regular file under `dir` (the server's `tls` directory), sorted by name.
pub(crate) fn read_pki(dir: &Path) -> Result<Vec<PkiFile>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("reading the PKI directory", &d))? {
            let entry = entry.map_err(io("reading the PKI directory", &d))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io("reading", &path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                let data = std::fs::read(&path).map_err(io("reading", &path))?;
                files.push(PkiFile { name, data });
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The manifest entry of `data`.
pub(crate) fn entry_of(data: &[u8]) -> FileEntry {
    FileEntry { size: data.len() as u64, sha256: hex(&Sha256::digest(data)) }
}

/// Writes the archive to `out`: the manifest, the PKI files, then `store_kv` (`store_size` bytes).
pub(crate) fn write(
    out: &File,
    manifest: &Manifest,
    pki: &[PkiFile],
    store_kv: File,
    store_size: u64,
) -> io::Result<()> {
    let mut tar = tar::Builder::new(BufWriter::new(out));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = |size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        // Keys and secrets are inside: readable by the owner only, in the archive as on disk.
        h.set_mode(0o600);
        h.set_mtime(now);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    let json = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
    tar.append_data(&mut header(json.len() as u64), manifest::NAME, &json[..])?;
    for f in pki {
        tar.append_data(&mut header(f.data.len() as u64), format!("{PKI}{}", f.name), &f.data[..])?;
    }
    tar.append_data(&mut header(store_size), STORE_KV, BufReader::new(store_kv).take(store_size))?;
    tar.into_inner()?.flush()
}

/// What [`extract`] put in the scratch directory.
pub(crate) struct Extracted {
    pub(crate) manifest: Manifest,
    /// The PKI files, laid out as `<data-dir>/server/tls` wants them.
    pub(crate) tls_dir: PathBuf,
    /// The objects.
    pub(crate) store_kv: PathBuf,
}

/// Reads and checks the archive at `path`, extracting it into `scratch`.
pub(crate) fn extract(path: &Path, scratch: &Path) -> Result<Extracted> {
    let bad = |message: String| Error::Archive { path: path.to_owned(), message };
    let file = File::open(path).map_err(io("opening the backup", path))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    let damaged =
        |e: io::Error| bad(format!("the archive is damaged or truncated ({e}); use another copy of the backup"));
    let mut entries = tar.entries().map_err(damaged)?;
    let not_backup =
        |e: io::Error| bad(format!("the file is not a tar archive ({e}): not an rkube backup, or a truncated one"));
    let mut first = match entries.next() {
        Some(e) => e.map_err(not_backup)?,
        None => return Err(bad("the file is empty or not a tar archive: not an rkube backup".into())),
    };
    if first.path().map_err(damaged)?.as_os_str() != manifest::NAME
        || first.header().size().map_err(damaged)? > MAX_MANIFEST
    {
        return Err(bad(format!("the first member is not {}: not an rkube backup", manifest::NAME)));
    }
    let mut json = Vec::new();
    first.read_to_end(&mut json).map_err(damaged)?;
    drop(first);
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("{} is not valid ({e}): not an rkube backup, or a damaged one", manifest::NAME)))?;
    manifest.check().map_err(bad)?;

    let tls_dir = scratch.join("tls");
    let store_kv = scratch.join(STORE_KV);
    std::fs::create_dir_all(&tls_dir).map_err(io("creating", &tls_dir))?;
    let mut seen = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(damaged)?;
        let name = entry.path().map_err(damaged)?.to_string_lossy().into_owned();
        let Some(expected) = manifest.files.get(&name) else {
            return Err(bad(format!("member {name:?} is not listed in the manifest: the archive was altered")));
        };
        if !entry.header().entry_type().is_file() {
            return Err(bad(format!("member {name:?} is not a regular file")));
        }
        let dest = match name.strip_prefix(PKI) {
            Some(rel) if is_plain_relative(rel) => tls_dir.join(rel),
            None if name == STORE_KV => store_kv.clone(),
            _ => return Err(bad(format!("member {name:?} has a path rkube never writes"))),
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        let (size, sum) = copy_hashed(&mut entry, &dest).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other => damaged(e),
            _ => Error::Io { what: "writing", path: dest.clone(), source: e },
        })?;
        if size != expected.size || sum != expected.sha256 {
            return Err(bad(format!(
                "member {name:?} does not match the manifest ({size} bytes, sha256 {sum}; expected {} bytes, {}): \
                 the archive is damaged or truncated; use another copy of the backup",
                expected.size, expected.sha256
            )));
        }
        seen.push(name);
    }
    if let Some(missing) = manifest.files.keys().find(|k| !seen.contains(k)) {
        return Err(bad(format!(
            "member {missing:?} is missing: the archive is truncated; use another copy of the backup"
        )));
    }
    if !manifest.files.contains_key(STORE_KV) {
        return Err(bad(format!("the manifest lists no {STORE_KV}: not a complete rkube backup")));
    }
    Ok(Extracted { manifest, tls_dir, store_kv })
}

/// True for `a/b.crt`, false for anything absolute or with `..`.
fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty() && Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Copies `from` into a new file `dest` (mode 0600), returning the size and hex SHA-256 of what was copied.
fn copy_hashed(from: &mut impl Read, dest: &Path) -> io::Result<(u64, String)> {
    let mut out = BufWriter::new(secret_file(dest)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((size, hex(&hasher.finalize())))
}

/// Creates `path` readable by its owner only (it may hold private keys).
pub(crate) fn secret_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_extracted() {
        assert!(is_plain_relative("ca.crt") && is_plain_relative("sub/x.key"));
        assert!(!is_plain_relative("../etc/passwd") && !is_plain_relative("/etc/passwd") && !is_plain_relative(""));
    }
}
