//! The node agent's HTTPS API, upstream's kubelet port (10250): `containerLogs` (follow, previous, tail,
//! since, timestamps), `exec`, `attach` and `portForward` (SPDY and WebSocket, as kubectl speaks them, through
//! CRI's streaming calls), `/healthz`, `/metrics`, `/metrics/resource` and `/stats/summary` (CRI stats).
//! Only clients with a certificate from the cluster CA are served (the API server's kubelet-client identity).

mod containerlogs;
mod failure;
mod host;
mod logformat;
mod logs;
mod lookup;
mod metrics;
mod query;
mod relay;
mod routes;
mod server;
mod state;
mod stats;
mod streams;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

/// Errors of the agent API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where and how the agent API listens.
#[derive(Clone)]
pub struct ServerConfig {
    /// Listen address (port 10250 by default).
    pub addr: SocketAddr,
    /// TLS with the node's serving certificate, requiring client certificates from the cluster CA.
    pub tls: Arc<rustls::ServerConfig>,
    /// Where container logs are (the kubelet's `pod_logs_dir`); relative CRI log paths are resolved here.
    pub pod_logs_dir: PathBuf,
    /// The node's name (`nodeName` in `/stats/summary`).
    pub node_name: String,
}

/// Serves until `stop` is set; fires `ready` once listening.
pub async fn serve(
    config: ServerConfig,
    runtime: rkube_cri::Runtime,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<()> {
    let listener =
        tokio::net::TcpListener::bind(config.addr).await.map_err(|source| Error::Bind { addr: config.addr, source })?;
    let state = Arc::new(state::State {
        runtime,
        metrics: metrics::Metrics::default(),
        pod_logs_dir: config.pod_logs_dir,
        node_name: config.node_name,
        stop: stop.clone(),
        cpu_sample: Mutex::new(None),
    });
    let app = routes::router(state);
    tracing::info!(addr = %listener.local_addr().unwrap_or(config.addr), "agent API listening");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    server::run(listener, config.tls, app, stop).await;
    Ok(())
}
