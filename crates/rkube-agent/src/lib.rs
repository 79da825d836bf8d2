//! The node agent (`rkube agent`, and inside `rkube server` unless `--disable-agent`): starts or connects to
//! the container runtime, imports the pause image, registers the node and keeps it healthy (status,
//! conditions, a Lease renewed every 10 s), writes the node's CNI config, and runs the kubelet and the agent
//! API (port 10250), shutting down gracefully.
//!
//! Order of [`run`]: runtime → pause image import and node registration at once → status and Lease loops →
//! CNI conflist once the node has a podCIDR (the status loop rechecks readiness at once) → volumes → kubelet →
//! agent API → ready (the node posted Ready). The first part to fail stops the others and [`run`] returns its
//! error with context.
//!
//! Stopping leaves containers running, as upstream's kubelet does: the next start adopts them. The supervised
//! containerd is stopped; its shims (and so the pods) keep running. `rkube agent clean` ([`clean`]) removes
//! everything a node left behind.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod clean;
pub mod cni;
pub mod conditions;
pub mod config;
pub mod hostinfo;
pub mod identity;
pub mod join;
pub mod lease;
pub mod network;
pub mod node;
pub mod resources;
pub mod services;
pub mod tls;

mod lock;
mod register;
mod run;
mod runtime;
mod status;

use std::time::Duration;

use tokio::sync::watch;

pub use config::{AgentConfig, Flags, RuntimeSource};
/// The API client the agent runs on (kube-rs), re-exported so callers need not depend on kube themselves.
pub use kube::Client;
pub use run::run;

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (all problems, one per line).
    #[error("invalid agent configuration:\n{0}")]
    Invalid(String),
    /// The container runtime could not be started, reached or checked.
    #[error("{what}: {source}")]
    Runtime {
        /// What the agent was doing.
        what: String,
        /// The runtime side's error (in the message, not as `source()`: the message already carries it, and
        /// error chains printed by callers would repeat it).
        source: Box<rkube_cri::Error>,
    },
    /// The CNI configuration could not be written.
    #[error("CNI configuration: {0}")]
    Cni(String),
    /// The pod network could not start or failed (issue 6: leases, backend, node files).
    #[error("the pod network: {0}")]
    Network(String),
    /// The agent API's TLS could not be set up.
    #[error("agent API TLS: {0}")]
    Tls(String),
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation and its path.
        what: String,
        /// The OS error (in the message).
        source: std::io::Error,
    },
    /// The agent's API identity could not be set up.
    #[error("node identity: {0}")]
    Identity(String),
    /// Another agent (or `agent clean`) holds this data directory.
    #[error("{0}")]
    Busy(String),
    /// The kubelet failed.
    #[error("the kubelet failed: {0}")]
    Kubelet(Box<rkube_kubelet::Error>),
    /// The agent API failed.
    #[error("the agent API (kubelet port) failed: {0}")]
    AgentApi(Box<rkube_kubelet_server::Error>),
    /// A part of the agent stopped or panicked unexpectedly.
    #[error("{0}")]
    Stopped(String),
    /// The service proxy or the cluster DNS could not start or failed (issue 7).
    #[error("{0}")]
    Services(String),
    /// The agent was asked to stop before it was ready.
    #[error("stopped before the node was ready")]
    Cancelled,
}

impl Error {
    /// A `map_err` adapter for runtime errors.
    pub(crate) fn runtime(what: impl Into<String>) -> impl FnOnce(rkube_cri::Error) -> Error {
        let what = what.into();
        move |source| Error::Runtime { what, source: Box::new(source) }
    }

    /// A `map_err` adapter for I/O errors.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sleeps for `d` unless `stop` is set first; returns whether to stop.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stopped(stop) => true,
    }
}

/// Resolves once `stop` is set or its sender is gone (then nobody can stop us any more: the owner is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not inside a caller's `select!`.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}
