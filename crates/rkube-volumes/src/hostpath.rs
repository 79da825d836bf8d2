//! hostPath `type` checks (pkg/volume/hostpath): `DirectoryOrCreate`/`FileOrCreate` create what is missing,
//! the other types only check, with upstream's error wording. The path itself is the container's host path.

use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Checks (or creates) `path` for the hostPath `type` `ty` (`None`/`""`: no check).
pub(crate) fn check_type(path: &Path, ty: Option<&str>) -> Result<(), String> {
    let shown = path.display();
    // Upstream stats through symlinks: a link to a directory is a directory.
    let meta = std::fs::metadata(path);
    let exists = meta.is_ok();
    let ft = meta.as_ref().ok().map(|m| m.file_type());
    let is = |f: fn(&std::fs::FileType) -> bool| ft.as_ref().is_some_and(f);
    match ty.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists => make_dir(path).map_err(|e| e.to_string()),
        "DirectoryOrCreate" | "Directory" if !is(|f| f.is_dir()) => {
            Err(format!("hostPath type check failed: {shown} is not a directory"))
        }
        "DirectoryOrCreate" | "Directory" => Ok(()),
        "FileOrCreate" if !exists => make_file(path).map_err(|e| e.to_string()),
        "FileOrCreate" | "File" if !is(|f| f.is_file()) => {
            Err(format!("hostPath type check failed: {shown} is not a file"))
        }
        "FileOrCreate" | "File" => Ok(()),
        "Socket" if !is(|f| f.is_socket()) => Err(format!("hostPath type check failed: {shown} is not a socket file")),
        "CharDevice" if !is(|f| f.is_char_device()) => {
            Err(format!("hostPath type check failed: {shown} is not a character device"))
        }
        "BlockDevice" if !is(|f| f.is_block_device()) => {
            Err(format!("hostPath type check failed: {shown} is not a block device"))
        }
        "Socket" | "CharDevice" | "BlockDevice" => Ok(()),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

/// As upstream: parents too, mode 0755.
fn make_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// As upstream: an empty file, mode 0644 (subject to the umask), in an existing directory.
fn make_file(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new().create(true).append(true).mode(0o644).open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_creates_as_upstream() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        let file = t.path().join("f");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&file, "x").unwrap();
        assert!(check_type(&dir, Some("Directory")).is_ok());
        assert!(check_type(&dir, None).is_ok());
        assert!(check_type(&t.path().join("nothing"), Some("")).is_ok());
        assert_eq!(
            check_type(&file, Some("Directory")).unwrap_err(),
            format!("hostPath type check failed: {} is not a directory", file.display())
        );
        let missing = t.path().join("missing");
        assert_eq!(
            check_type(&missing, Some("Directory")).unwrap_err(),
            format!("hostPath type check failed: {} is not a directory", missing.display())
        );
        assert_eq!(
            check_type(&dir, Some("File")).unwrap_err(),
            format!("hostPath type check failed: {} is not a file", dir.display())
        );
        assert_eq!(
            check_type(&file, Some("Socket")).unwrap_err(),
            format!("hostPath type check failed: {} is not a socket file", file.display())
        );
        assert_eq!(
            check_type(&file, Some("CharDevice")).unwrap_err(),
            format!("hostPath type check failed: {} is not a character device", file.display())
        );
        assert!(check_type(Path::new("/dev/null"), Some("CharDevice")).is_ok());
        assert_eq!(
            check_type(Path::new("/dev/null"), Some("BlockDevice")).unwrap_err(),
            "hostPath type check failed: /dev/null is not a block device"
        );
        assert_eq!(check_type(&file, Some("Fancy")).unwrap_err(), "Fancy is an invalid volume type");
        let sock = t.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(check_type(&sock, Some("Socket")).is_ok());
    }

    #[test]
    fn or_create_types_create_and_then_check() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/c");
        check_type(&dir, Some("DirectoryOrCreate")).unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o755);
        let file = t.path().join("a/f");
        check_type(&file, Some("FileOrCreate")).unwrap();
        assert!(file.is_file());
        assert!(check_type(&file, Some("DirectoryOrCreate")).unwrap_err().ends_with("is not a directory"));
        assert!(check_type(&dir, Some("FileOrCreate")).unwrap_err().ends_with("is not a file"));
        // FileOrCreate does not make missing parents (upstream opens the file only).
        assert!(check_type(&t.path().join("no/such/f"), Some("FileOrCreate")).is_err());
    }
}
