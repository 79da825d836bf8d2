//! The node agent (`rkube agent`, and inside `rkube server` unless `--disable-agent`): starts or connects to
//! the container runtime, imports the pause image, registers the node and keeps it healthy (status,
//! conditions, a Lease renewed every 10 s), writes the node's CNI config, and runs the kubelet and the agent
//! API (port 10250), shutting down gracefully.

use tokio::sync::{oneshot, watch};

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (all problems, one per line).
    #[error("invalid agent configuration:\n{0}")]
    Invalid(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The agent's configuration (from `rkube agent`/`rkube server` flags).
#[derive(Clone, Debug)]
pub struct AgentConfig {}

/// Runs the agent until `stop` is set; fires `ready` once the node is registered and Ready.
pub async fn run(
    config: AgentConfig,
    client: kube::Client,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let _ = (config, client, stop, ready);
    todo!("rkube-agent helper")
}
