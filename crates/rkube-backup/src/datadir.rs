//! The parts of a server's data directory a backup covers (`server/db/state.db`, `server/tls/`), and finding out
//! whether a running process has the embedded store open.

use std::path::{Path, PathBuf};

/// The embedded store's file, as `rkube server` places it.
pub(crate) fn store_file(data_dir: &Path) -> PathBuf {
    db_dir(data_dir).join("state.db")
}

/// The embedded store's directory (the file and its WAL).
pub(crate) fn db_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db")
}

/// The PKI: CA, service-account key, serving and client certificates.
pub(crate) fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("tls")
}

/// True if `dir` exists and holds at least one entry.
pub(crate) fn non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// The processes (other than this one) that have `file`, or its `-wal`/`-shm` companions, open: read from
/// `/proc/<pid>/fd`. Processes this user cannot inspect are not seen (as root, every one is).
pub(crate) fn holders(file: &Path) -> Vec<u32> {
    let Ok(canonical) = file.canonicalize() else {
        return Vec::new();
    };
    let wanted: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = canonical.clone().into_os_string();
            p.push(s);
            PathBuf::from(p)
        })
        .collect();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| wanted.contains(&target))) {
            pids.push(pid);
        }
    }
    pids
}

/// A sentence naming the processes that hold the store, for refusals.
pub(crate) fn describe_holders(pids: &[u32]) -> String {
    let names: Vec<String> = pids
        .iter()
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("{} (pid {pid})", comm.trim())
        })
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_held_open_by_another_process_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state.db");
        std::fs::write(&file, b"x").expect("write");
        assert!(holders(&file).is_empty(), "nobody else has it open");
        // A child process holding the file open on its stdin, as a server holds its store.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(&file).expect("open"))
            .spawn()
            .expect("spawn sleep");
        let found = holders(&file);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
    }
}
