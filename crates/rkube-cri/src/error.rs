//! Errors of the runtime side of the node.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to or running the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CRI call failed.
    #[error("{what}: {source}")]
    Cri {
        /// The call and its subject.
        what: String,
        /// The runtime's answer.
        #[source]
        source: tonic::Status,
    },
    /// The endpoint given for the runtime is not a Unix socket path (`/run/x.sock` or `unix:///run/x.sock`).
    #[error("invalid container runtime endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The runtime's socket could not be reached.
    #[error("cannot connect to the container runtime at {}: {source}", endpoint.display())]
    Connect {
        /// The socket.
        endpoint: PathBuf,
        /// The transport's error (with its cause, e.g. the socket does not exist).
        #[source]
        source: tonic::transport::Error,
    },
    /// The runtime answered but says it is not ready (or did not answer in time).
    #[error("container runtime at {} is not ready{}: {reason}", endpoint.display(), waited.map(|w| format!(" after {w:?}")).unwrap_or_default())]
    NotReady {
        /// The socket.
        endpoint: PathBuf,
        /// How long we waited, when we did.
        waited: Option<Duration>,
        /// The runtime's own reason (its not-ready conditions), or the last error.
        reason: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation and its subject (path, command).
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A program the node needs is not installed.
    #[error("{program} not found ({detail}); install the Debian package {package}")]
    MissingProgram {
        /// The program.
        program: String,
        /// Where it was looked for.
        detail: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// No directory with the CNI plugins was found.
    #[error("no CNI plugins found: none of {} contains `bridge`; install the Debian package containernetworking-plugins", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoCniPlugins {
        /// The directories looked at.
        tried: Vec<PathBuf>,
    },
    /// The supervised containerd exited before it answered CRI.
    #[error("containerd exited before it was ready ({status}); see its log {}{tail}", log.display())]
    RuntimeExited {
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log, when it could be read (starting with a newline).
        tail: String,
    },
    /// The kubelet side and the runtime side use different cgroup drivers.
    #[error(
        "kubelet cgroup driver: {kubelet} ({kubelet_source}) is different from the container runtime's cgroup driver: \
         {runtime} ({runtime_source}); {fix}"
    )]
    CgroupDriverMismatch {
        /// The agent's driver.
        kubelet: String,
        /// Why the agent uses it.
        kubelet_source: String,
        /// The runtime's driver.
        runtime: String,
        /// Where the runtime's value was read.
        runtime_source: String,
        /// How to make them agree.
        fix: String,
    },
    /// The runtime's own configuration could not be read for a setting.
    #[error("cannot read {what} from the container runtime's status: {reason}")]
    RuntimeConfig {
        /// The setting.
        what: &'static str,
        /// What was missing or malformed.
        reason: String,
    },
    /// An image archive is unreadable, incomplete or corrupt (nothing from it was imported).
    #[error("image archive {}: {problem}", file.display())]
    Archive {
        /// The archive.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A command (e.g. `ctr images import`) failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An image could not be built.
    #[error("building image {image}: {reason}")]
    Image {
        /// The image's name.
        image: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// A `map_err` adapter for CRI calls: `client.list_containers(req).await.map_err(Error::cri("ListContainers"))`.
    pub fn cri(what: impl Into<String>) -> impl FnOnce(tonic::Status) -> Error {
        let what = what.into();
        move |source| Error::Cri { what, source }
    }

    /// A `map_err` adapter for I/O: `fs::read(&p).map_err(Error::io(format!("reading {}", p.display())))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// The gRPC code when this is a CRI error (e.g. `NotFound` for a container that is already gone).
    pub fn cri_code(&self) -> Option<tonic::Code> {
        match self {
            Error::Cri { source, .. } => Some(source.code()),
            _ => None,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
