//! Tests of the atomic writer on a temp dir: layout, update swaps `..data`, removals, modes, no-op rewrites.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn file(data: &str, mode: u32) -> FileProjection {
    FileProjection { data: data.as_bytes().to_vec(), mode }
}

fn payload(items: &[(&str, &str, u32)]) -> Payload {
    items.iter().map(|(p, d, m)| (p.to_string(), file(d, *m))).collect()
}

fn ts_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != DATA_DIR)
        .collect();
    v.sort();
    v
}

#[test]
fn first_write_lays_out_data_dir_and_visible_links() {
    let t = tempfile::tempdir().unwrap();
    let wrote = write(t.path(), &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]), None).unwrap();
    assert!(wrote);
    let data = std::fs::read_link(t.path().join(DATA_DIR)).unwrap();
    let name = data.to_string_lossy().into_owned();
    assert!(name.starts_with("..20") && name.matches('_').count() == 5, "{name}");
    assert_eq!(ts_dirs(t.path()), vec![name.clone()]);
    assert_eq!(std::fs::read_link(t.path().join("a")).unwrap(), Path::new("..data/a"));
    assert_eq!(std::fs::read_link(t.path().join("sub")).unwrap(), Path::new("..data/sub"));
    assert_eq!(std::fs::read_to_string(t.path().join("sub/b")).unwrap(), "2");
    let mode = |p: &str| std::fs::metadata(t.path().join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("a"), 0o644);
    assert_eq!(mode("sub/b"), 0o600);
    assert_eq!(mode(&name), 0o755);
}

#[test]
fn update_swaps_data_link_and_drops_old_dir_and_removed_keys() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), &payload(&[("a", "1", 0o644), ("gone", "x", 0o644), ("d/e", "y", 0o644)]), None).unwrap();
    let before = std::fs::read_link(t.path().join(DATA_DIR)).unwrap();
    let wrote = write(t.path(), &payload(&[("a", "2", 0o644), ("new", "n", 0o400)]), None).unwrap();
    assert!(wrote);
    let after = std::fs::read_link(t.path().join(DATA_DIR)).unwrap();
    assert_ne!(before, after);
    assert_eq!(ts_dirs(t.path()), vec![after.to_string_lossy().into_owned()], "old ts dir removed");
    assert_eq!(std::fs::read_to_string(t.path().join("a")).unwrap(), "2");
    assert_eq!(std::fs::read_to_string(t.path().join("new")).unwrap(), "n");
    assert!(std::fs::symlink_metadata(t.path().join("gone")).is_err(), "removed key's link is gone");
    assert!(std::fs::symlink_metadata(t.path().join("d")).is_err(), "removed dir's link is gone");
    assert!(!t.path().join(NEW_DATA_DIR).exists());
}

#[test]
fn unchanged_payload_is_not_rewritten_but_mode_change_is() {
    let t = tempfile::tempdir().unwrap();
    let p = payload(&[("a", "1", 0o644)]);
    assert!(write(t.path(), &p, None).unwrap());
    let before = std::fs::read_link(t.path().join(DATA_DIR)).unwrap();
    assert!(!write(t.path(), &p, None).unwrap());
    assert_eq!(std::fs::read_link(t.path().join(DATA_DIR)).unwrap(), before);
    assert!(write(t.path(), &payload(&[("a", "1", 0o400)]), None).unwrap());
    assert_eq!(std::fs::metadata(t.path().join("a")).unwrap().permissions().mode() & 0o7777, 0o400);
}

#[test]
fn a_lost_visible_link_is_recreated_without_rewrite() {
    let t = tempfile::tempdir().unwrap();
    let p = payload(&[("a", "1", 0o644)]);
    write(t.path(), &p, None).unwrap();
    std::fs::remove_file(t.path().join("a")).unwrap();
    assert!(!write(t.path(), &p, None).unwrap());
    assert_eq!(std::fs::read_to_string(t.path().join("a")).unwrap(), "1");
}

#[test]
fn empty_payload_gives_an_empty_volume() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), &payload(&[("a", "1", 0o644)]), None).unwrap();
    write(t.path(), &Payload::new(), None).unwrap();
    assert!(std::fs::symlink_metadata(t.path().join("a")).is_err());
    assert!(t.path().join(DATA_DIR).exists());
}

#[test]
fn invalid_paths_are_refused_as_upstream() {
    let t = tempfile::tempdir().unwrap();
    for (p, want) in [
        ("/abs", "invalid path: must be relative path: /abs"),
        ("a/../../x", "invalid path: must not contain '..': a/../../x"),
        ("..data/x", "invalid path: must not start with '..': ..data/x"),
        ("", "invalid path: must not be empty: \"\""),
    ] {
        let err = write(t.path(), &payload(&[(p, "x", 0o644)]), None).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    assert_eq!(validate_path("a/./b//c").unwrap(), "a/b/c");
    assert!(std::fs::read_dir(t.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn fs_group_owns_files_and_lets_the_group_read() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: changing groups needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = payload(&[("a", "1", 0o400), ("d/b", "2", 0o600)]);
    assert!(write(t.path(), &p, Some(2345)).unwrap());
    let meta = |p: &str| std::fs::metadata(t.path().join(p)).unwrap();
    assert_eq!((meta("a").gid(), meta("a").permissions().mode() & 0o7777), (2345, 0o440));
    assert_eq!((meta("d/b").gid(), meta("d/b").permissions().mode() & 0o7777), (2345, 0o640));
    assert_eq!((meta("d").gid(), meta("d").permissions().mode() & 0o2000), (2345, 0o2000));
    assert!(!write(t.path(), &p, Some(2345)).unwrap(), "current: not rewritten");
    assert!(write(t.path(), &p, Some(3456)).unwrap(), "another group: rewritten");
    assert_eq!(meta("a").gid(), 3456);
}
