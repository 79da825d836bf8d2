//! Upstream's atomic writer (pkg/volume/util/atomic_writer.go): a volume's files live in a timestamped
//! `..<date>.<n>` directory, `..data` is a symlink to it swapped by rename, and every user-visible top-level
//! entry is a symlink through `..data`. A reader sees either the old or the new set of files, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// The symlink naming the current timestamped directory.
pub(crate) const DATA_DIR: &str = "..data";
/// Where the next `..data` is made before the rename.
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_PATH_LENGTH: usize = 4096;
const MAX_FILE_NAME_LENGTH: usize = 255;

/// One file of a volume's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileProjection {
    /// The file's bytes.
    pub(crate) data: Vec<u8>,
    /// Its permission bits.
    pub(crate) mode: u32,
}

/// Files by path relative to the volume directory.
pub(crate) type Payload = BTreeMap<String, FileProjection>;

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// A path of the payload is not a plain relative path (upstream's `validatePath` wording).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A filesystem call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io { what, path: path.to_owned(), source }
}

/// Checks one payload path as upstream does and returns it cleaned (`a/./b` → `a/b`).
pub(crate) fn validate_path(p: &str) -> Result<String, WriteError> {
    if p.is_empty() {
        return Err(WriteError::InvalidPath(format!("must not be empty: {p:?}")));
    }
    if p.starts_with('/') {
        return Err(WriteError::InvalidPath(format!("must be relative path: {p}")));
    }
    if p.len() > MAX_PATH_LENGTH {
        return Err(WriteError::InvalidPath(format!("must be less than or equal to {MAX_PATH_LENGTH} characters")));
    }
    let items: Vec<&str> = p.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(WriteError::InvalidPath(format!("must not contain '..': {p}")));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(WriteError::InvalidPath(format!(
                "filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            )));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(WriteError::InvalidPath(format!("must not start with '..': {p}")));
    }
    let clean: Vec<&str> = items.into_iter().filter(|i| !i.is_empty() && *i != ".").collect();
    if clean.is_empty() {
        return Err(WriteError::InvalidPath(format!("must not be empty: {p:?}")));
    }
    Ok(clean.join("/"))
}

/// Makes `target` hold exactly `payload`; returns whether a new timestamped directory was written (nothing is
/// rewritten when every file's bytes, mode and group are already current, so a sync every 10 s costs only
/// reads). With `fs_group` (the pod's `fsGroup`), files and directories belong to that group and the group
/// may read them (upstream's `SetVolumeOwnership` for read-only volumes: files `|0440`, dirs `|02550`).
pub(crate) fn write(target: &Path, payload: &Payload, fs_group: Option<u32>) -> Result<bool, WriteError> {
    let mut clean = Payload::new();
    for (p, f) in payload {
        let mode = if fs_group.is_some() { f.mode | 0o440 } else { f.mode };
        clean.insert(validate_path(p)?, FileProjection { data: f.data.clone(), mode });
    }
    let data_link = target.join(DATA_DIR);
    let old_ts = match std::fs::read_link(&data_link) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("reading link", &data_link)(e)),
    };
    let mut to_remove = BTreeSet::new();
    let mut should_write = true;
    if let Some(old) = &old_ts {
        let old_path = target.join(old);
        to_remove = paths_to_remove(&clean, &old_path)?;
        if to_remove.is_empty() && !payload_changed(&clean, &old_path, fs_group)? {
            should_write = false;
        }
    }
    if should_write {
        let ts_dir = new_timestamp_dir(target)?;
        let ts_name = ts_dir.file_name().map(PathBuf::from).unwrap_or_default();
        let published = write_payload(&clean, &ts_dir, fs_group).and_then(|()| {
            let tmp = target.join(NEW_DATA_DIR);
            // A crash between symlink and rename leaves a stale `..data_tmp`; it is only ever ours.
            let _ = std::fs::remove_file(&tmp);
            symlink(&ts_name, &tmp).map_err(io_err("creating symlink", &tmp))?;
            std::fs::rename(&tmp, &data_link).map_err(io_err("renaming symlink to", &data_link))
        });
        if let Err(e) = published {
            let _ = std::fs::remove_file(target.join(NEW_DATA_DIR));
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
    }
    create_user_visible(target, &clean)?;
    for p in to_remove.iter().filter(|p| !p.contains('/')) {
        let path = target.join(p);
        std::fs::remove_file(&path).map_err(io_err("pruning old user-visible path", &path))?;
    }
    if should_write && let Some(old) = old_ts {
        let old_path = target.join(old);
        std::fs::remove_dir_all(&old_path).map_err(io_err("removing old data directory", &old_path))?;
    }
    Ok(should_write)
}

/// Paths of the old version no longer in the payload (parents of new files are kept).
fn paths_to_remove(payload: &Payload, old: &Path) -> Result<BTreeSet<String>, WriteError> {
    let mut present = BTreeSet::new();
    match walk(old, "", &mut present) {
        Err(WriteError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(present),
        r => r?,
    }
    let mut wanted = BTreeSet::new();
    for file in payload.keys() {
        let mut p = file.as_str();
        loop {
            wanted.insert(p.to_owned());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    Ok(present.difference(&wanted).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> Result<(), WriteError> {
    for entry in std::fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let entry = entry.map_err(io_err("reading directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let ft = entry.file_type().map_err(io_err("reading file type", &entry.path()))?;
        if ft.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

/// Whether any file's bytes or mode differ from the old timestamped directory (upstream compares bytes only;
/// comparing the mode too makes a `defaultMode` change land).
fn payload_changed(payload: &Payload, old: &Path, fs_group: Option<u32>) -> Result<bool, WriteError> {
    use std::os::unix::fs::MetadataExt;
    for (p, f) in payload {
        let path = old.join(p);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        if !meta.is_file()
            || meta.permissions().mode() & 0o7777 != f.mode & 0o7777
            || fs_group.is_some_and(|g| meta.gid() != g)
        {
            return Ok(true);
        }
        if std::fs::read(&path).map_err(io_err("reading", &path))? != f.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `..2006_01_02_15_04_05.<random>`, mode 0755 whatever the umask (as `os.MkdirTemp` with upstream's prefix).
fn new_timestamp_dir(target: &Path) -> Result<PathBuf, WriteError> {
    let prefix = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.").to_string();
    for _ in 0..100 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        let dir = target.join(format!("{prefix}{}", h.finish() as u32));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err("setting mode of", &dir))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating directory", &dir)(e)),
        }
    }
    Err(WriteError::Io {
        what: "creating a unique directory in",
        path: target.to_owned(),
        source: io::Error::from(io::ErrorKind::AlreadyExists),
    })
}

fn write_payload(payload: &Payload, dir: &Path, fs_group: Option<u32>) -> Result<(), WriteError> {
    if let Some(g) = fs_group {
        group_dir(dir, g)?;
    }
    for (p, f) in payload {
        let path = dir.join(p);
        if let Some(parent) = path.parent()
            && !parent.is_dir()
        {
            std::fs::create_dir_all(parent).map_err(io_err("creating directory", parent))?;
            if let Some(g) = fs_group {
                let mut d = parent;
                while d != dir {
                    group_dir(d, g)?;
                    d = d.parent().unwrap_or(dir);
                }
            }
        }
        std::fs::write(&path, &f.data).map_err(io_err("writing", &path))?;
        // Explicitly, since the create above is subject to the umask.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(io_err("setting mode of", &path))?;
        if let Some(g) = fs_group {
            std::os::unix::fs::chown(&path, None, Some(g)).map_err(io_err("changing the group of", &path))?;
        }
    }
    Ok(())
}

/// A directory of the payload owned by group `g`, which may enter and list it (setgid, as upstream).
fn group_dir(dir: &Path, g: u32) -> Result<(), WriteError> {
    std::os::unix::fs::chown(dir, None, Some(g)).map_err(io_err("changing the group of", dir))?;
    let mode = std::fs::metadata(dir).map_err(io_err("reading", dir))?.permissions().mode() & 0o7777;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o2550))
        .map_err(io_err("setting mode of", dir))
}

/// `name -> ..data/name` for every top-level entry that has no link yet (the link itself never changes).
fn create_user_visible(target: &Path, payload: &Payload) -> Result<(), WriteError> {
    for p in payload.keys() {
        let top = p.split('/').next().unwrap_or(p);
        let visible = target.join(top);
        match std::fs::symlink_metadata(&visible) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                symlink(Path::new(DATA_DIR).join(top), &visible).map_err(io_err("creating symlink", &visible))?
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
