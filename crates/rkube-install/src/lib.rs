//! `rkube install` and `rkube uninstall`: the systemd unit (`unit`), `/etc/rkube/config.yaml` (`settings`),
//! systemd itself (`systemd`), and the uninstall sweep: files (`files`), links (`links`), iptables chains
//! (`iptables`) and the nftables table (`nft`) rkube made on a host.

// Tests may unwrap: a panic is their failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod files;
pub mod iptables;
pub mod links;
pub mod nft;
pub mod procs;
pub mod settings;
pub mod systemd;
pub mod unit;

use std::path::{Path, PathBuf};

/// The pod network's default bridge, conflist name and flannel files (uninstall's defaults).
pub use rkube_net::files::{CNI_BRIDGE, CONFLIST_NAME, DEFAULT_DOCKER_OPTS, DEFAULT_SUBNET_ENV};

/// What went wrong installing or uninstalling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing", "removing").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not what rkube reads.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A program is not installed (the sweeps take that as nothing of theirs to remove).
    #[error("{program} is not installed")]
    NotInstalled {
        /// The program.
        program: String,
    },
    /// A command (systemctl, iptables, ip, nft) failed.
    #[error("{command}: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output, or why it could not run.
        message: String,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// `path` (absolute, as the installed system sees it) under `root` (`/` for the host itself).
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    let rel: PathBuf = path.components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
    root.join(rel)
}

/// Runs `program args`, returning its stdout; a failure to start or a non-zero exit is an error with stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let command = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotInstalled { program: program.to_owned() },
            _ => Error::Command { command: command.clone(), message: e.to_string() },
        })?;
    if let (Some(mut si), Some(input)) = (child.stdin.take(), stdin) {
        si.write_all(input.as_bytes())
            .map_err(|e| Error::Command { command: command.clone(), message: e.to_string() })?;
    }
    let out =
        child.wait_with_output().map_err(|e| Error::Command { command: command.clone(), message: e.to_string() })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(Error::Command { command, message: format!("{} ({message})", out.status) });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_land_under_the_root() {
        assert_eq!(
            under_root(Path::new("/tmp/r"), Path::new("/etc/rkube/config.yaml")),
            Path::new("/tmp/r/etc/rkube/config.yaml")
        );
        assert_eq!(under_root(Path::new("/"), Path::new("/var/lib/rkube")), Path::new("/var/lib/rkube"));
        // `..` cannot climb out of the root.
        assert_eq!(under_root(Path::new("/tmp/r"), Path::new("/../etc")), Path::new("/tmp/r/etc"));
    }
}
