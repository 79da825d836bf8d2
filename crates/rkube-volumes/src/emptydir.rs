//! emptyDir: a directory under the pod (mode 0777, as upstream), or with `medium: Memory` a tmpfs mounted
//! there (`size=` from `sizeLimit`); and the mount table facts teardown needs (what is mounted under a path).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

/// Creates the volume directory (and its parents) and makes it world-writable, as upstream's `setupDir`.
fn setup_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o777 != 0o777 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode((meta.permissions().mode() & !0o777) | 0o777))?;
    }
    Ok(())
}

/// Sets up an emptyDir at `dir`: a tmpfs when `memory`, limited to `size_bytes` when given.
pub(crate) fn setup(dir: &Path, memory: bool, size_bytes: Option<u64>) -> Result<(), String> {
    setup_dir(dir).map_err(|e| format!("unable to create emptyDir {}: {e}", dir.display()))?;
    if !memory || mount_points_under(dir).map_err(|e| e.to_string())?.iter().any(|m| m == dir) {
        return Ok(());
    }
    let options = size_bytes.map(|s| format!("size={s}")).unwrap_or_default();
    let data = std::ffi::CString::new(options.clone()).map_err(|e| e.to_string())?;
    rustix::mount::mount("tmpfs", dir, "tmpfs", MountFlags::empty(), Some(data.as_c_str())).map_err(|e| {
        format!(
            "mount failed: {e}\nMounting command: mount\nMounting arguments: -t tmpfs -o {options} tmpfs {}",
            dir.display()
        )
    })
}

/// Gives the emptyDir's root to group `g` with setgid, so files made in it belong to the pod's `fsGroup`
/// (upstream's `SetVolumeOwnership`; only the root, which is all a fresh emptyDir has, so user data written
/// later is never walked at each sync).
pub(crate) fn own_root(dir: &Path, g: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    if meta.gid() != g {
        std::os::unix::fs::chown(dir, None, Some(g))?;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o2770 != 0o2770 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o2770))?;
    }
    Ok(())
}

/// Unmounts `dir` (lazily when busy: the pod's containers are gone, a late reader must not block teardown).
pub(crate) fn unmount(dir: &Path) -> io::Result<()> {
    match rustix::mount::unmount(dir, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => Ok(rustix::mount::unmount(dir, UnmountFlags::DETACH)?),
        Err(e) => Err(e.into()),
    }
}

/// Every mount point at or below `root`, deepest first (so they can be unmounted in order).
pub(crate) fn mount_points_under(root: &Path) -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    Ok(out)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn dir_is_world_writable() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("x/y");
        setup(&d, false, None).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o777);
    }

    #[test]
    fn memory_medium_mounts_a_sized_tmpfs_once_and_unmounts() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting tmpfs needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("mem");
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                while mount_points_under(&self.0).unwrap().contains(&self.0) {
                    let _ = unmount(&self.0);
                }
            }
        }
        let _guard = Unmount(d.clone());
        setup(&d, true, Some(1 << 20)).unwrap();
        setup(&d, true, Some(1 << 20)).unwrap();
        let mounts = mount_points_under(&d).unwrap();
        assert_eq!(mounts, vec![d.clone()], "mounted exactly once");
        let stat = rustix::fs::statfs(&d).unwrap();
        assert_eq!(stat.f_blocks as u64 * stat.f_bsize as u64, 1 << 20);
        unmount(&d).unwrap();
        assert!(mount_points_under(&d).unwrap().is_empty());
    }
}
