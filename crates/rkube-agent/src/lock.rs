//! One agent per data directory: an exclusive `flock` on `<agent dir>/agent.lock` held while the agent runs
//! (released by the kernel however the process ends), which `agent clean` also takes.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::{Error, Result};

/// A held lock (released when dropped).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock of `agent_dir` (created if missing) for `what`, or says who holds it.
pub(crate) fn take(agent_dir: &Path, what: &str) -> Result<DirLock> {
    std::fs::create_dir_all(agent_dir).map_err(Error::io(format!("creating {}", agent_dir.display())))?;
    let path = agent_dir.join("agent.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(Error::io(format!("opening {}", path.display())))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(Error::Busy(format!(
            "{} is in use by {} (its lock {} is held); stop it first",
            agent_dir.display(),
            if holder.trim().is_empty() { "another agent".to_owned() } else { holder.trim().to_owned() },
            path.display()
        )));
    }
    file.set_len(0).map_err(Error::io(format!("writing {}", path.display())))?;
    write!(file, "{what} (pid {})", std::process::id()).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path(), "the agent").unwrap();
        let err = take(dir.path(), "agent clean").unwrap_err().to_string();
        assert!(err.contains("in use by the agent (pid"), "{err}");
        drop(held);
        take(dir.path(), "agent clean").unwrap();
    }
}
