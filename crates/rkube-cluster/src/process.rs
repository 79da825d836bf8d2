//! The cluster's long-running processes: started detached (a session of their own, output to a log file, the
//! PID in a file), found again by PID file (checked against the command line, so a reused PID is never
//! signalled), stopped by PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::{Error, Result};

/// The path of namespace `netns` as `ip netns` makes it.
pub fn netns_path(netns: &str) -> PathBuf {
    Path::new("/run/netns").join(netns)
}

/// Starts `program args` detached, in network namespace `netns` if given, appending its output to `log`, and
/// writes its PID to `pid_file`. `setsid` and `nsenter --net` both exec, so the PID is the program's own.
/// The PID file's directory must occur in `args`: [`running`] checks that before trusting the PID file.
pub fn spawn(netns: Option<&str>, program: &Path, args: &[String], log: &Path, pid_file: &Path) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io(format!("opening {}", log.display())))?;
    let err = out.try_clone().map_err(Error::io(format!("opening {}", log.display())))?;
    let mut cmd = Command::new("setsid");
    if let Some(ns) = netns {
        cmd.arg("nsenter").arg(format!("--net={}", netns_path(ns).display())).arg("--");
    }
    cmd.arg(program).args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    // A cluster's nodes are configured by their command lines alone, never by this host's installed
    // /etc/rkube/config.yaml.
    cmd.env("RKUBE_CONFIG", "");
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    let child = cmd.spawn().map_err(|e| Error::Command { command: describe(program, args), detail: e.to_string() })?;
    std::fs::write(pid_file, format!("{}\n", child.id()))
        .map_err(Error::io(format!("writing {}", pid_file.display())))?;
    Ok(child)
}

/// A command line for messages.
pub fn describe(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ")
}

/// The PID in `pid_file` if that process runs and is the one started with it: its command line holds the
/// directory the PID file is in (every process of a cluster is given a path under that directory).
pub fn running(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let marker = pid_file.parent()?.as_os_str().as_encoded_bytes().to_vec();
    alive_with(pid, &marker).then_some(pid)
}

/// Whether process `pid` runs (not a zombie) and its command line contains `marker`.
fn alive_with(pid: u32, marker: &[u8]) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name, which may itself hold spaces or parentheses.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.windows(marker.len().max(1)).any(|w| w == marker)
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, signal);
    }
}

/// Whether `pid` has gone (or is a zombie: dead, waiting for a parent that is not us to reap it).
fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    matches!(stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()), None | Some("Z") | Some("X"))
}

/// Waits up to `timeout` for `pid` to go; true if it went.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Stops the process of `pid_file` (if it runs): SIGTERM, up to `grace` to exit, then SIGKILL. The PID file
/// is removed. Returns the PID it stopped.
pub fn stop(pid_file: &Path, grace: Duration) -> Option<u32> {
    let pid = running(pid_file);
    if let Some(pid) = pid {
        signal(pid, Signal::TERM);
        if !wait_gone(pid, grace) {
            signal(pid, Signal::KILL);
            wait_gone(pid, Duration::from_secs(10));
        }
    }
    let _ = std::fs::remove_file(pid_file);
    pid
}

/// Kills the process of `pid_file` with SIGKILL, as a crash would, and waits for it to go.
pub fn kill(pid_file: &Path) -> Option<u32> {
    let pid = running(pid_file)?;
    signal(pid, Signal::KILL);
    wait_gone(pid, Duration::from_secs(10));
    let _ = std::fs::remove_file(pid_file);
    Some(pid)
}

/// The length of `log` now (where the output of a process started next begins).
pub fn log_len(log: &Path) -> usize {
    std::fs::metadata(log).map_or(0, |m| m.len() as usize)
}

/// Waits until `log`, from byte `from` on, has a line containing `needle`, failing if `child` exits or
/// `timeout` passes. `step` names what is awaited in the error, which carries the log's tail.
pub fn wait_for_line(
    child: &mut Child,
    log: &Path,
    from: usize,
    needle: &str,
    timeout: Duration,
    step: &str,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let bytes = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default());
        if text.lines().any(|l| l.contains(needle)) {
            return Ok(());
        }
        let reason = match child.try_wait() {
            Ok(Some(status)) => Some(format!("the process exited ({status})")),
            _ if Instant::now() >= deadline => Some(format!("not ready within {} s", timeout.as_secs())),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(step_error(step, reason, log));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A failed step's error with the tail of `log`.
pub fn step_error(step: &str, reason: String, log: &Path) -> Error {
    Error::Step { step: step.to_owned(), reason, log: log.display().to_string(), tail: log_tail(log, 30) }
}

/// The last `n` lines of `log`.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a short command to completion; an error carries its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command { command: command.clone(), detail: e.to_string() })?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(Error::Command { command, detail: format!("{} ({})", detail, out.status) });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_find_stop() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("p.pid");
        let log = dir.path().join("p.log");
        // The state directory appears in the command line, as for every cluster process.
        // (A loop, not `exec sleep`: the shell, whose command line holds the directory, must stay.)
        let script = format!("echo started; while true; do sleep 0.2; done # {}", dir.path().display());
        let mut child = spawn(None, Path::new("sh"), &["-c".into(), script], &log, &pid_file).unwrap();
        wait_for_line(&mut child, &log, 0, "started", Duration::from_secs(10), "sleep").unwrap();
        let pid = running(&pid_file).expect("running");
        assert_eq!(pid, child.id());
        // Another PID file in another directory does not match this process.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("p.pid"), pid.to_string()).unwrap();
        assert_eq!(running(&other.path().join("p.pid")), None);
        assert_eq!(stop(&pid_file, Duration::from_secs(5)), Some(pid));
        let _ = child.wait();
        assert_eq!(running(&pid_file), None);
        assert!(!pid_file.exists());
    }

    #[test]
    fn a_process_that_exits_fails_the_wait_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let args = vec!["-c".into(), "echo boom; exit 3".into()];
        let mut child = spawn(None, Path::new("sh"), &args, &log, &dir.path().join("p.pid")).unwrap();
        let e = wait_for_line(&mut child, &log, 0, "ready", Duration::from_secs(10), "[3/5] server").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("[3/5] server failed: the process exited") && text.contains("boom"), "{text}");
    }
}
