//! Files rkube made, removed with a line each for the user; what is already gone is not mentioned, so a
//! second uninstall prints nothing.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Removes the file (or symlink) at `path`; `Ok(true)` when there was one.
pub fn remove_file(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io { what: "removing", path: path.to_path_buf(), source }),
    }
}

/// Removes the directory `dir` if it is empty; `Ok(true)` when it was removed.
pub fn remove_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => Ok(false),
        Err(source) => Err(Error::Io { what: "removing", path: dir.to_path_buf(), source }),
    }
}

/// Mount points at or under `dir` (from `/proc/self/mountinfo`; octal escapes such as `\040` decoded).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = (b[i] == b'\\').then(|| s.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok())).flatten();
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the directory tree `dir`; `Ok(true)` when it existed. Refuses while anything is mounted under it:
/// deleting through a mount would delete what the mount shows (a host directory bind-mounted into a pod).
pub fn remove_tree(dir: &Path) -> Result<bool> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(false);
    }
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if resolved == Path::new("/") {
        return Err(Error::Io {
            what: "refusing to remove",
            path: dir.to_path_buf(),
            source: std::io::Error::other("it is the root directory"),
        });
    }
    let mounts = mounts_under(&resolved);
    if let Some(m) = mounts.first() {
        return Err(Error::Io {
            what: "refusing to remove",
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "{} is still mounted ({} mount(s) under it); stop rkube and run `umount -R {}` first",
                m.display(),
                mounts.len(),
                resolved.display()
            )),
        });
    }
    std::fs::remove_dir_all(dir).map_err(|source| Error::Io { what: "removing", path: dir.to_path_buf(), source })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/b/f");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, "x").unwrap();
        assert!(remove_file(&f).unwrap());
        assert!(!remove_file(&f).unwrap());
        assert!(!remove_empty_dir(d.path().join("a").as_path()).unwrap(), "a is not empty");
        assert!(remove_tree(&d.path().join("a")).unwrap());
        assert!(!remove_tree(&d.path().join("a")).unwrap());
        assert!(remove_tree(Path::new("/")).is_err());
    }

    #[test]
    fn decodes_mountinfo_escapes() {
        assert_eq!(unescape("/tmp/with\\040space"), "/tmp/with space");
        assert_eq!(unescape("/plain"), "/plain");
        assert!(mounts_under(Path::new("/proc")).contains(&PathBuf::from("/proc")));
    }
}
