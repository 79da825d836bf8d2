//! `rkube cluster`: several rkube nodes on this machine, as kind gives, but with namespaces instead of
//! containers. The cluster's own network namespace (`rkc-<name>`) holds a bridge, the "physical" L2 network
//! 192.168.77.0/24 with no way out; each node gets a namespace (`rkc-<name>-n<i>`) with a veth `eth0` on that
//! bridge at 192.168.77.(10+i). Node 1 runs `rkube server` (with its embedded agent), the others `rkube agent`
//! joining it with an identity `up` issues from node 1's CA. kubectl reaches the API through a forwarder
//! listening on the host's loopback and connecting from inside node 1's namespace, so the host namespace gets
//! no route, address or rule. With `--etcd`, Debian's etcd runs in the cluster namespace.
//!
//! Node processes enter only the node's network namespace (`nsenter --net`), not a mount namespace of their own
//! (`ip netns exec` would make one): the mounts containerd and the agent make stay visible on the host, where
//! `rkube agent clean` (run by `down`) finds and removes them, and where a test can check nothing is left.
//!
//! Everything a cluster holds is found from its name alone (PID files in its state directory, namespaces by
//! name), so `down` also removes a cluster that `up` left half-built.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bench;
pub mod down;
pub mod etcd;
pub mod forward;
pub mod habench;
pub mod identity;
pub mod join;
pub mod layout;
pub mod net;
pub mod netperf;
pub mod nodes;
pub mod poddns;
pub mod process;
pub mod state;
pub mod up;

pub use layout::Layout;
pub use state::ClusterState;
pub use up::UpOptions;

/// What went wrong, with the context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input (a name, a flag value); the message names the value and the fix.
    #[error("{0}")]
    Invalid(String),
    /// A command this crate runs failed.
    #[error("{command}: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr, or why it could not run.
        detail: String,
    },
    /// A file or directory could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A step of `up` (or `start`) failed; the log tail says why.
    #[error("{step} failed: {reason}\n--- last lines of {log} ---\n{tail}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        reason: String,
        /// The log to read.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// Talking to the cluster's API failed.
    #[error("{0}")]
    Api(String),
}

impl Error {
    /// An [`Error::Io`] maker for `map_err`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
