//! Runs a single-member etcd on loopback ports from this process: for tests, benchmarks and `rkube cluster up --etcd`.
//!
//! The etcd is the system's binary (Debian's `etcd-server` installs `/usr/bin/etcd`), started with its own data
//! directory and its log in `etcd.log` there. Stopping kills it (SIGKILL, by the PID of the child this process
//! started): etcd is built to survive that, so a restart test is also a crash test.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_store::Store;

use crate::{EtcdConfig, EtcdStore};

/// etcd's `--max-request-bytes`: rkube's largest value plus room for the key and the transaction around it
/// (etcd's default equals [`rkube_store::MAX_VALUE_SIZE`], which leaves no room for them).
pub const MAX_REQUEST_BYTES: usize = rkube_store::MAX_VALUE_SIZE + 1024 * 1024;
/// etcd's `--quota-backend-bytes`: 8 GiB (etcd's suggested maximum), so that large test loads never hit the
/// default 2 GiB quota and its "database space exceeded" alarm.
pub const QUOTA_BACKEND_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// The member name, in `--name` and `--initial-cluster`.
const MEMBER: &str = "rkube";
const LOG_FILE: &str = "etcd.log";

/// How to run a [`LocalEtcd`].
#[derive(Debug, Clone)]
pub struct LocalEtcdOptions {
    /// The etcd binary.
    pub binary: PathBuf,
    /// Where etcd keeps its data (created if missing); `None` for a temporary directory removed on drop.
    pub data_dir: Option<PathBuf>,
    /// The client port on 127.0.0.1; `None` for a free one.
    pub client_port: Option<u16>,
    /// The peer port on 127.0.0.1; `None` for a free one.
    pub peer_port: Option<u16>,
    /// Serve clients over TLS; `None` for plain HTTP.
    pub tls: Option<LocalEtcdTls>,
    /// How long etcd may take to answer its first request.
    pub start_timeout: Duration,
}

impl Default for LocalEtcdOptions {
    /// Debian's `/usr/bin/etcd`, a temporary data directory, free ports, plain HTTP, 30 s to start.
    fn default() -> Self {
        LocalEtcdOptions {
            binary: PathBuf::from("/usr/bin/etcd"),
            data_dir: None,
            client_port: None,
            peer_port: None,
            tls: None,
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// TLS for a [`LocalEtcd`]'s client port (the peer port stays plain: there is one member, on loopback).
#[derive(Debug, Clone)]
pub struct LocalEtcdTls {
    /// The CA that signed the server certificate and, with `client_cert_auth`, the client certificates.
    pub ca_file: PathBuf,
    /// The server certificate (PEM); it must name 127.0.0.1 (an IP subject alternative name).
    pub cert_file: PathBuf,
    /// The server certificate's key (PEM).
    pub key_file: PathBuf,
    /// Require client certificates signed by `ca_file` (etcd's `--client-cert-auth`).
    pub client_cert_auth: bool,
    /// The client certificate that [`LocalEtcd::client_config`] (and the readiness check) uses; `None` to use the
    /// server certificate, which works when it does not restrict its use to server authentication.
    pub client_cert_file: Option<PathBuf>,
    /// The key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
}

/// A failure to run a [`LocalEtcd`].
#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    /// The data directory could not be made ready.
    #[error("cannot prepare the etcd data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// No free loopback port could be found.
    #[error("cannot find a free port on 127.0.0.1 for etcd: {0}")]
    Ports(#[source] std::io::Error),
    /// The binary could not be run.
    #[error(
        "cannot run {binary}: {source}; install Debian's etcd-server package (apt-get install etcd-server) or give the path of an etcd binary"
    )]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// etcd exited before it answered.
    #[error("etcd exited while starting ({status}); the end of its log {log}:\n{tail}")]
    Exited {
        /// How it exited.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// etcd did not answer in time (it was killed).
    #[error(
        "etcd at {endpoint} did not answer within {waited:?} (last error: {last_error}); the end of its log {log}:\n{tail}"
    )]
    NotReady {
        /// Its client URL.
        endpoint: String,
        /// How long it was given.
        waited: Duration,
        /// The last error of the readiness check.
        last_error: String,
        /// The log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// Waiting for the killed etcd failed.
    #[error("cannot stop etcd (pid {pid}): {source}")]
    Stop {
        /// The process.
        pid: u32,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// An etcd process this process started; killed on [`LocalEtcd::stop`] and on drop.
#[derive(Debug)]
pub struct LocalEtcd {
    options: LocalEtcdOptions,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    /// Removed when dropped, which is after `Drop::drop` has killed the process.
    _temp: Option<tempfile::TempDir>,
}

impl LocalEtcd {
    /// Starts etcd and waits until it answers a request.
    pub async fn start(options: LocalEtcdOptions) -> Result<LocalEtcd, LocalEtcdError> {
        let (data_dir, temp) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("rkube-etcd-")
                    .tempdir()
                    .map_err(|source| LocalEtcdError::DataDir { path: std::env::temp_dir(), source })?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        prepare_data_dir(&data_dir)?;
        let fresh = !data_dir.join("member").exists();
        // Free ports are found by binding and releasing them; another process can take one in between, so retry
        // with new ports (only when etcd's data is new: a member remembers its peer URL).
        let attempts = if fresh && options.client_port.is_none() && options.peer_port.is_none() { 3 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let (client_port, peer_port) = free_ports(options.client_port, options.peer_port)?;
            let mut etcd = LocalEtcd {
                options: options.clone(),
                data_dir: data_dir.clone(),
                client_port,
                peer_port,
                child: None,
                _temp: None,
            };
            match etcd.launch().await {
                Ok(()) => {
                    etcd._temp = temp;
                    return Ok(etcd);
                }
                Err(LocalEtcdError::Exited { tail, status, log }) if tail.contains("address already in use") => {
                    if fresh {
                        // Only what this failed attempt created: a member directory that remembers the taken port.
                        let _ = std::fs::remove_dir_all(data_dir.join("member"));
                    }
                    last = Some(LocalEtcdError::Exited { status, log, tail });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| LocalEtcdError::Ports(std::io::Error::other("no attempt was made"))))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.options.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// A store configuration that reaches this etcd (with its TLS files, if any).
    pub fn client_config(&self) -> EtcdConfig {
        let mut config = EtcdConfig::new([self.endpoint()]);
        if let Some(tls) = &self.options.tls {
            config.ca_file = Some(tls.ca_file.clone());
            match (&tls.client_cert_file, &tls.client_key_file) {
                (Some(cert), Some(key)) => {
                    config.cert_file = Some(cert.clone());
                    config.key_file = Some(key.clone());
                }
                _ if tls.client_cert_auth => {
                    config.cert_file = Some(tls.cert_file.clone());
                    config.key_file = Some(tls.key_file.clone());
                }
                _ => {}
            }
        }
        config
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// etcd's log file (in the data directory; appended to across restarts).
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// The PID of the running etcd, `None` when stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills etcd (SIGKILL, by PID) and waits for it to exit. Does nothing if it is not running.
    pub async fn stop(&mut self) -> Result<(), LocalEtcdError> {
        let Some(child) = self.child.take() else { return Ok(()) };
        let pid = child.id();
        tokio::task::spawn_blocking(move || kill_and_wait(child))
            .await
            .map_err(|e| LocalEtcdError::Stop { pid, source: std::io::Error::other(e) })?
            .map_err(|source| LocalEtcdError::Stop { pid, source })
    }

    /// Starts etcd again on the same data directory and ports (stopping it first if it runs), and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), LocalEtcdError> {
        self.stop().await?;
        self.launch().await
    }

    /// Spawns etcd and waits for it to answer; on failure it is killed and the log's end is reported.
    async fn launch(&mut self) -> Result<(), LocalEtcdError> {
        let log = self.log_file();
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| LocalEtcdError::DataDir { path: log.clone(), source })?;
        let err = out.try_clone().map_err(|source| LocalEtcdError::DataDir { path: log.clone(), source })?;
        let mut cmd = Command::new(&self.options.binary);
        cmd.args(self.args()).stdin(Stdio::null()).stdout(out).stderr(err);
        // etcd also reads its flags from ETCD_* variables and refuses ones that conflict with the command line.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(name);
            }
        }
        let child =
            cmd.spawn().map_err(|source| LocalEtcdError::Spawn { binary: self.options.binary.clone(), source })?;
        self.child = Some(child);
        let ready = self.wait_ready().await;
        if ready.is_err() {
            let _ = self.stop().await;
        }
        ready
    }

    fn args(&self) -> Vec<String> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut args = vec![
            format!("--name={MEMBER}"),
            format!("--data-dir={}", self.data_dir.display()),
            format!("--listen-client-urls={}", self.endpoint()),
            format!("--advertise-client-urls={}", self.endpoint()),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster={MEMBER}={peer}"),
            "--initial-cluster-state=new".to_owned(),
            "--initial-cluster-token=rkube-local".to_owned(),
            format!("--max-request-bytes={MAX_REQUEST_BYTES}"),
            format!("--quota-backend-bytes={QUOTA_BACKEND_BYTES}"),
            "--logger=zap".to_owned(),
        ];
        if let Some(tls) = &self.options.tls {
            args.push(format!("--cert-file={}", tls.cert_file.display()));
            args.push(format!("--key-file={}", tls.key_file.display()));
            args.push(format!("--trusted-ca-file={}", tls.ca_file.display()));
            if tls.client_cert_auth {
                args.push("--client-cert-auth".to_owned());
            }
        }
        args
    }

    async fn wait_ready(&mut self) -> Result<(), LocalEtcdError> {
        let began = Instant::now();
        let mut config = self.client_config();
        config.connect_timeout = Duration::from_secs(1);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(LocalEtcdError::Exited {
                    status: status.to_string(),
                    log: self.log_file(),
                    tail: self.log_tail(),
                });
            }
            let last_error = match EtcdStore::connect(config.clone()).await {
                Ok(store) => match store.current_revision().await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if began.elapsed() >= self.options.start_timeout {
                return Err(LocalEtcdError::NotReady {
                    endpoint: self.endpoint(),
                    waited: self.options.start_timeout,
                    last_error,
                    log: self.log_file(),
                    tail: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of etcd's log, for errors.
    fn log_tail(&self) -> String {
        const MAX: usize = 4000;
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_file()) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            text = String::from_utf8_lossy(&buf).into_owned();
        }
        let lines: Vec<&str> = text.lines().collect();
        let mut tail = lines[lines.len().saturating_sub(15)..].join("\n");
        if tail.len() > MAX {
            let cut = tail.len() - MAX;
            let cut = (cut..tail.len()).find(|i| tail.is_char_boundary(*i)).unwrap_or(tail.len());
            tail = tail.split_off(cut);
        }
        tail
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // Blocking is brief: SIGKILL cannot be ignored. Waiting reaps the process before its data dir is removed.
            let _ = kill_and_wait(child);
        }
    }
}

fn kill_and_wait(mut child: Child) -> std::io::Result<()> {
    // Fails only if the child was already reaped, which `wait` then reports as done.
    let _ = child.kill();
    child.wait().map(|_| ())
}

/// Creates the data directory with the owner-only permissions etcd insists on.
fn prepare_data_dir(dir: &Path) -> Result<(), LocalEtcdError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source| LocalEtcdError::DataDir { path: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)
}

/// The given ports, or free ones: two listeners held at once so the two ports differ.
fn free_ports(client: Option<u16>, peer: Option<u16>) -> Result<(u16, u16), LocalEtcdError> {
    let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LocalEtcdError::Ports);
    let a = bind()?;
    let b = bind()?;
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(LocalEtcdError::Ports);
    Ok((client.map_or_else(|| port(&a), Ok)?, peer.map_or_else(|| port(&b), Ok)?))
}
