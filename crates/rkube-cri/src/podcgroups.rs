//! Removing a pod's cgroups once its sandbox is gone. runc removes each container's cgroup, but the pod-level
//! cgroup (`kubepods[/tier]/pod<uid>`, the sandbox's parent) is the kubelet's to remove, as upstream's pod
//! container manager does; left alone they pile up by the thousand on a busy node.

use std::path::{Path, PathBuf};

/// Where the cgroup hierarchies are mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// The pod's cgroup directories that exist, in every hierarchy (each cgroup v1 controller and the unified one),
/// under each QoS tier, for the cgroupfs and the systemd driver's names.
pub fn dirs(uid: &str) -> Vec<PathBuf> {
    dirs_under(Path::new(ROOT), uid)
}

fn dirs_under(root: &Path, uid: &str) -> Vec<PathBuf> {
    let Ok(hierarchies) = std::fs::read_dir(root) else { return Vec::new() };
    let systemd_uid = uid.replace('-', "_");
    let mut out = Vec::new();
    for h in hierarchies.flatten().map(|e| e.path()) {
        for tier in ["", "besteffort", "burstable"] {
            let cgroupfs = h.join("kubepods").join(tier).join(format!("pod{uid}"));
            let systemd = if tier.is_empty() {
                h.join("kubepods.slice").join(format!("kubepods-pod{systemd_uid}.slice"))
            } else {
                h.join("kubepods.slice")
                    .join(format!("kubepods-{tier}.slice"))
                    .join(format!("kubepods-{tier}-pod{systemd_uid}.slice"))
            };
            out.extend([cgroupfs, systemd].into_iter().filter(|d| d.is_dir()));
        }
    }
    out
}

/// Removes the pod's cgroups that are empty: container cgroups left inside first, then the pod's. A cgroup
/// with processes cannot be removed (rmdir fails with EBUSY), so nothing running is touched. Returns how many
/// pod-level directories were removed.
pub fn remove(uid: &str) -> usize {
    remove_dirs(dirs(uid))
}

fn remove_dirs(dirs: Vec<PathBuf>) -> usize {
    let mut removed = 0;
    for dir in dirs {
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten().map(|c| c.path()).filter(|p| p.is_dir()) {
                if let Err(e) = std::fs::remove_dir(&c) {
                    tracing::debug!(path = %c.display(), "leaving a container cgroup: {e}");
                }
            }
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => removed += 1,
            Err(e) => tracing::debug!(path = %dir.display(), "leaving a pod cgroup: {e}"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    // A plain directory tree stands in for cgroupfs here (rmdir of empty directories behaves alike); the real
    // hierarchy is exercised by the kubelet's and `rkube cluster`'s end-to-end tests.
    #[test]
    fn finds_every_hierarchy_and_tier_and_removes_empty_ones() {
        let root = tempfile::tempdir().unwrap();
        let uid = "1234-abcd";
        let made = [
            root.path().join("memory/kubepods/besteffort/pod1234-abcd/c1"),
            root.path().join("cpu/kubepods/pod1234-abcd"),
            root.path().join("pids/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_abcd.slice"),
        ];
        for d in &made {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(root.path().join("memory/kubepods/besteffort/pod-other")).unwrap();
        let found = dirs_under(root.path(), uid);
        assert_eq!(found.len(), 3, "{found:?}");
        // A file inside a pod cgroup stands for a cgroup that cannot be removed.
        std::fs::write(made[1].join("busy"), "").unwrap();
        assert_eq!(remove_dirs(found), 2);
        assert!(!made[0].exists() && !made[2].exists());
        assert!(made[1].exists(), "a cgroup that cannot be removed is left");
        assert!(root.path().join("memory/kubepods/besteffort/pod-other").exists(), "other pods are not touched");
    }
}
