//! The host as the checks see it: files, directories, commands and the caller's identity. [`RealHost`] reads
//! the machine; tests use a fake with fixed answers.

use std::path::Path;
use std::process::Command;

/// A command's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Whether it exited 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Everything the synchronous checks read.
pub trait Host: Sync {
    /// A file's text, `None` when it cannot be read.
    fn read(&self, path: &str) -> Option<String>;
    /// The names in a directory (empty when it cannot be read).
    fn read_dir(&self, path: &str) -> Vec<String>;
    /// A symlink's target.
    fn read_link(&self, path: &str) -> Option<String>;
    /// Whether a path exists.
    fn exists(&self, path: &str) -> bool;
    /// Runs a program; `None` when it cannot be started (not installed).
    fn run(&self, program: &str, args: &[&str]) -> Option<CmdOutput>;
    /// The effective user id.
    fn euid(&self) -> u32;
    /// Free bytes (for unprivileged users) on the filesystem holding `path`, or its nearest existing ancestor.
    fn free_bytes(&self, path: &Path) -> Option<u64>;

    /// The full path of a program in the usual binary directories.
    fn which(&self, name: &str) -> Option<String> {
        BIN_DIRS.iter().map(|d| format!("{d}/{name}")).find(|p| self.exists(p))
    }
}

/// Where binaries are looked for (root's PATH on Debian, as the agent runs them).
const BIN_DIRS: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// The machine this process runs on (in its own namespaces: under `ip netns exec`, `/proc/net` and
/// `/proc/sys/net` are that namespace's).
#[derive(Debug, Default)]
pub struct RealHost;

impl RealHost {
    /// The real host.
    pub fn new() -> RealHost {
        RealHost
    }
}

impl Host for RealHost {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read(path).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn read_dir(&self, path: &str) -> Vec<String> {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    fn read_link(&self, path: &str) -> Option<String> {
        std::fs::read_link(path).ok().map(|p| p.to_string_lossy().into_owned())
    }

    fn exists(&self, path: &str) -> bool {
        Path::new(path).exists()
    }

    fn run(&self, program: &str, args: &[&str]) -> Option<CmdOutput> {
        let path = if program.contains('/') { program.to_string() } else { self.which(program)? };
        let out = Command::new(path).args(args).env("LC_ALL", "C").output().ok()?;
        Some(CmdOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn euid(&self) -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn free_bytes(&self, path: &Path) -> Option<u64> {
        let existing = path.ancestors().find(|p| p.exists())?;
        let st = rustix::fs::statvfs(existing).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
}
