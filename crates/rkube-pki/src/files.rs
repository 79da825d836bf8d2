//! File IO for the TLS directory: atomic writes with the right modes, reads that tell "absent" from "broken".

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{PkiError, Result};

/// Mode for private keys and kubeconfigs (which embed a key).
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Mode for certificates: public, and components running as other users may need to read them.
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Which kind of file is broken decides what the operator should do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// The CA: regenerating it invalidates every credential in the cluster.
    Ca,
    /// A leaf certificate or key: safe to regenerate.
    Leaf,
    /// The service-account key: regenerating it invalidates every token.
    ServiceAccountKey,
}

impl FileKind {
    pub(crate) fn remedy(self) -> &'static str {
        match self {
            FileKind::Ca => {
                "restore it from a backup, or remove ca.crt and ca.key to create a new CA on the next start \
                 (every kubeconfig and agent then needs new credentials)"
            }
            FileKind::Leaf => {
                "remove it (and the .crt/.key file of the same name) to have a new one issued on the next start, \
                 or restore it from a backup"
            }
            FileKind::ServiceAccountKey => {
                "restore it from a backup, or remove it to create a new key on the next start \
                 (every service-account token issued so far then stops working)"
            }
        }
    }
}

/// Reads a text file; `None` if it does not exist. Any other failure is an error, so that a file we
/// cannot read is never mistaken for a missing one and overwritten.
pub(crate) fn read_optional(path: &Path, kind: FileKind) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| PkiError::Corrupt {
            path: path.to_owned(),
            what: "PEM file",
            detail: "it is not text".to_owned(),
            remedy: kind.remedy(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read { path: path.to_owned(), source }),
    }
}

/// Creates `dir` (and parents) if needed; a directory we create holds keys, so only its owner may enter it.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let write_err = |source| PkiError::Write { path: dir.to_owned(), source };
    fs::create_dir_all(dir).map_err(write_err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(write_err)
}

/// Writes `contents` to `path` with `mode` so that a reader sees the old file or the new one, never half of
/// one, and a crash leaves no key readable by others: the temporary file is created 0600 in the same
/// directory, filled, synced, given its final mode, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let write_err = |source| PkiError::Write { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new().prefix(".rkube-tmp-").tempfile_in(dir).map_err(write_err)?;
    tmp.write_all(contents).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    // The rename is durable only once the directory entry is; a failure here loses nothing already written.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Narrows an existing secret file to 0600 if group or others can read it (e.g. restored from a backup
/// with a careless umask): a key readable by others is a credential leak, and fixing it is always safe.
pub(crate) fn tighten_secret_mode(path: &Path) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(PkiError::Read { path: path.to_owned(), source });
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "private key was readable by others; setting mode 600");
        fs::set_permissions(path, fs::Permissions::from_mode(SECRET_MODE))
            .map_err(|source| PkiError::Write { path: path.to_owned(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().expect("test io");
        let p = dir.path().join("sub/x.key");
        write_atomic(&p, b"one", SECRET_MODE).expect("test io");
        assert_eq!(fs::metadata(&p).expect("test io").permissions().mode() & 0o777, 0o600);
        write_atomic(&p, b"two", PUBLIC_MODE).expect("test io");
        assert_eq!(fs::read(&p).expect("test io"), b"two");
        assert_eq!(fs::metadata(&p).expect("test io").permissions().mode() & 0o777, 0o644);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("sub")).expect("test io").count(), 1);
    }

    #[test]
    fn read_optional_distinguishes_missing_from_unreadable() {
        let dir = tempfile::tempdir().expect("test io");
        assert!(read_optional(&dir.path().join("none"), FileKind::Leaf).expect("test io").is_none());
        // A directory where a file should be is an error, not "absent".
        let err = read_optional(dir.path(), FileKind::Leaf).expect_err("should fail");
        assert!(matches!(err, PkiError::Read { .. }), "{err}");
        let bin = dir.path().join("bin");
        fs::write(&bin, [0xff, 0xfe, 0x00]).expect("test io");
        let err = read_optional(&bin, FileKind::Ca).expect_err("should fail");
        assert!(err.to_string().contains("bin"), "{err}");
    }

    #[test]
    fn tighten_secret_mode_narrows_world_readable_keys() {
        let dir = tempfile::tempdir().expect("test io");
        let p = dir.path().join("k");
        fs::write(&p, "x").expect("test io");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("test io");
        tighten_secret_mode(&p).expect("test io");
        assert_eq!(fs::metadata(&p).expect("test io").permissions().mode() & 0o777, 0o600);
    }
}
