//! The supervisor of the agent's containerd: starts it with the generated config, waits until CRI answers,
//! restarts it (with back-off) whenever it dies, and stops it; a containerd left by a previous agent on the
//! same directory (the agent was killed) is stopped first, as two cannot share a root.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::containerd::{ContainerdConfig, find_program};
use crate::{Error, Result, Runtime};

/// How long a started containerd gets to answer CRI before [`Supervisor::start`] gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long containerd gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest Unix socket path the kernel accepts (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A containerd started by the agent, restarted (with back-off) whenever it dies, stopped by
/// [`Supervisor::stop`] or when dropped (SIGTERM, then SIGKILL after 10 s; only the process it started).
#[derive(Debug)]
pub struct Supervisor {
    config: ContainerdConfig,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
}

impl Supervisor {
    /// Writes the config, starts containerd and waits (printing progress on stderr) until it answers CRI
    /// with `RuntimeReady`.
    pub async fn start(config: ContainerdConfig) -> Result<Supervisor> {
        let mut config = config;
        config.program = find_program(&config.program, "containerd")?;
        find_program(Path::new("runc"), "runc")?;
        let socket = config.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::InvalidEndpoint {
                endpoint: socket.display().to_string(),
                reason: "longer than a Unix socket path may be (107 bytes): choose a shorter data directory",
            });
        }
        for dir in [&config.dir, &config.cni_conf_dir] {
            tokio::fs::create_dir_all(dir).await.map_err(Error::io(format!("creating {}", dir.display())))?;
        }
        if let Some(parent) = config.log_file.parent() {
            let what = format!("creating {}", parent.display());
            tokio::fs::create_dir_all(parent).await.map_err(Error::io(what))?;
        }
        let file = config.config_file();
        let what = format!("writing {}", file.display());
        tokio::fs::write(&file, config.toml()).await.map_err(Error::io(what))?;

        stop_stale(&config).await;
        let mut child = spawn(&config)?;
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
        let runtime = Runtime::connect_lazy(&socket)?;
        if let Err(e) = wait_started(&config, &mut child, &runtime).await {
            terminate(&mut child).await;
            return Err(e);
        }
        let (stop, stopped) = watch::channel(false);
        let restarts = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(supervise(config.clone(), child, stopped, pid.clone(), restarts.clone()));
        Ok(Supervisor { config, stop, task: Some(task), pid, restarts })
    }

    /// The CRI socket (for [`Runtime::connect`]).
    pub fn endpoint(&self) -> PathBuf {
        self.config.socket()
    }

    /// The config it runs with.
    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    /// The PID of the containerd running now (0 between a death and its restart).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// How many times containerd was restarted after dying.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Stops containerd: SIGTERM, up to 10 s to exit, then SIGKILL. Pods' shims keep running (by design):
    /// call [`crate::remove_all_pods`] first when nothing may outlive it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The task sees this and terminates containerd; if the tokio runtime is gone, kill_on_drop does.
        let _ = self.stop.send(true);
    }
}

/// The file holding the PID of the containerd running on a directory.
fn pid_file(config: &ContainerdConfig) -> PathBuf {
    config.dir.join("containerd.pid")
}

/// Stops a containerd a previous agent started on this directory and left running (the agent was killed):
/// only when that PID still runs `containerd --config` with this very config file.
async fn stop_stale(config: &ContainerdConfig) {
    let Some(pid) = std::fs::read_to_string(pid_file(config)).ok().and_then(|p| p.trim().parse::<i32>().ok()) else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let expected = format!("--config\0{}\0", config.config_file().display());
    if !cmdline.windows(expected.len()).any(|w| w == expected.as_bytes()) {
        return;
    }
    let Some(process) = rustix::process::Pid::from_raw(pid) else { return };
    tracing::warn!(pid, dir = %config.dir.display(), "stopping the containerd a previous agent left running");
    let _ = rustix::process::kill_process(process, rustix::process::Signal::TERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    // Gone, or a zombie (its parent, not us, reaps it).
    let running = || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    while running() {
        if Instant::now() >= deadline {
            let _ = rustix::process::kill_process(process, rustix::process::Signal::KILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn(config: &ContainerdConfig) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.log_file)
        .map_err(Error::io(format!("opening {}", config.log_file.display())))?;
    let log2 = log.try_clone().map_err(Error::io(format!("opening {}", config.log_file.display())))?;
    let child = Command::new(&config.program)
        .arg("--config")
        .arg(config.config_file())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own process group: a Ctrl-C meant for the agent must not kill the runtime under it; the agent
        // stops it itself.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io(format!("starting {}", config.program.display())))?;
    if let Some(pid) = child.id() {
        let file = pid_file(config);
        std::fs::write(&file, format!("{pid}\n")).map_err(Error::io(format!("writing {}", file.display())))?;
    }
    Ok(child)
}

/// Waits until the runtime answers CRI, or fails when containerd exits or the time is up.
async fn wait_started(config: &ContainerdConfig, child: &mut Child, runtime: &Runtime) -> Result<()> {
    let start = Instant::now();
    let mut next_note = Duration::from_secs(2);
    loop {
        if let Some(status) = child.try_wait().map_err(Error::io("waiting for containerd"))? {
            return Err(Error::RuntimeExited {
                status: status.to_string(),
                log: config.log_file.clone(),
                tail: log_tail(&config.log_file),
            });
        }
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            runtime.version().await?;
            runtime.check_ready().await
        });
        let last = match attempt.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 2s".to_string(),
        };
        if start.elapsed() >= READY_TIMEOUT {
            return Err(Error::NotReady { endpoint: config.socket(), waited: Some(READY_TIMEOUT), reason: last });
        }
        if start.elapsed() >= next_note {
            eprintln!(
                "rkube: waiting for containerd at {} ({}s; log {})",
                config.socket().display(),
                start.elapsed().as_secs(),
                config.log_file.display()
            );
            next_note += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of containerd's log, for errors.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    tail.iter().map(|l| format!("\n  {l}")).collect()
}

/// Keeps containerd running until asked to stop.
async fn supervise(
    config: ContainerdConfig,
    mut child: Child,
    mut stop: watch::Receiver<bool>,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                pid.store(0, Ordering::Relaxed);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                tracing::warn!(%status, log = %config.log_file.display(), "containerd exited; restarting in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                match spawn(&config) {
                    Ok(new) => {
                        child = new;
                        pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                        restarts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(pid = pid.load(Ordering::Relaxed), "containerd restarted");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot restart containerd");
                        // Wait on a process that has already exited: the loop comes back here after the back-off.
                        continue;
                    }
                }
            }
            _ = stop.changed() => {
                terminate(&mut child).await;
                pid.store(0, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// SIGTERM to this child only, up to [`STOP_TIMEOUT`] to exit, then SIGKILL.
async fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(raw) = child.id().and_then(|id| i32::try_from(id).ok())
        && let Some(pid) = rustix::process::Pid::from_raw(raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(pid = raw, "containerd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it");
    }
    let _ = child.kill().await;
}
