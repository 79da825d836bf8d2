//! Removing a pod's directory once its containers are gone: unmount what is mounted below it (memory-backed
//! emptyDirs), then delete without following a symlink and without entering another filesystem, so a
//! hostPath, a claim's PV or anything a container linked to is never touched.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::emptydir;

/// Unmounts everything below `pod_dir` and removes it; a mount that stays is an error and nothing below it
/// is deleted.
pub(crate) fn remove_pod_dir(pod_dir: &Path) -> Result<(), String> {
    let root = match std::fs::symlink_metadata(pod_dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return std::fs::remove_file(pod_dir).map_err(|e| format!("removing {}: {e}", pod_dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", pod_dir.display())),
    };
    let mounts = emptydir::mount_points_under(pod_dir).map_err(|e| format!("reading the mount table: {e}"))?;
    for m in &mounts {
        emptydir::unmount(m).map_err(|e| format!("unmounting {}: {e}", m.display()))?;
    }
    remove_tree(pod_dir, root.dev()).map_err(|e| format!("removing {}: {e}", pod_dir.display()))
}

/// Removes `path` (an entry, or a whole directory tree on device `dev`); symlinks are removed, not followed.
fn remove_tree(path: &Path, dev: u64) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    if meta.dev() != dev {
        return Err(io::Error::other(format!("{} is still a mount point; not removing it", path.display())));
    }
    for entry in std::fs::read_dir(path)? {
        remove_tree(&entry?.path(), dev)?;
    }
    std::fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_pod_dir_but_never_follows_symlinks_out() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("precious"), "keep").unwrap();
        let pod = t.path().join("pods/uid1");
        let vol = pod.join("volumes/kubernetes.io~empty-dir/scratch");
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("f"), "x").unwrap();
        std::os::unix::fs::symlink(&host, vol.join("link-to-host")).unwrap();
        std::os::unix::fs::symlink(host.join("precious"), pod.join("file-link")).unwrap();
        remove_pod_dir(&pod).unwrap();
        assert!(!pod.exists());
        assert_eq!(std::fs::read_to_string(host.join("precious")).unwrap(), "keep");
        remove_pod_dir(&pod).unwrap();
    }

    #[test]
    fn unmounts_a_tmpfs_below_and_removes() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting tmpfs needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let pod = t.path().join("uid2");
        let vol = pod.join("volumes/kubernetes.io~empty-dir/mem");
        emptydir::setup(&vol, true, None).unwrap();
        struct Guard(std::path::PathBuf);
        impl Drop for Guard {
            fn drop(&mut self) {
                for m in emptydir::mount_points_under(&self.0).unwrap_or_default() {
                    let _ = emptydir::unmount(&m);
                }
            }
        }
        let _g = Guard(pod.clone());
        std::fs::write(vol.join("in-memory"), "x").unwrap();
        remove_pod_dir(&pod).unwrap();
        assert!(!pod.exists());
        assert!(emptydir::mount_points_under(&pod).unwrap().is_empty());
    }
}
