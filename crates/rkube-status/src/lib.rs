//! A control-plane component's own status port, as kube-controller-manager (10257) and kube-scheduler
//! (10259) serve it: HTTPS with a self-signed certificate made at start (upstream does the same when no
//! `--tls-cert-file` is given), `/healthz`, `/livez` and `/readyz` for anyone (upstream's
//! `--authorization-always-allow-paths`), `/metrics` only for clients presenting a certificate from the
//! cluster CA (upstream delegates that check to the API server; rkube checks the CA itself, as its kubelet
//! port does).

mod metrics;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use metrics::process_metrics;

/// Errors of the status port.
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
    /// The self-signed serving certificate could not be made.
    #[error("making the self-signed serving certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The CA for client certificates, or the TLS configuration, is unusable.
    #[error("configuring TLS for the status port: {0}")]
    Tls(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the status endpoints report: filled in by the component as it runs.
#[derive(Debug)]
pub struct Health {
    /// The component's name in metrics (`leader_election_master_status{name=...}`).
    pub component: &'static str,
    /// Set once the component reached the API server and started; `/readyz` fails until then.
    ready: AtomicBool,
    /// Whether this process holds the component's leader lease.
    leading: AtomicBool,
}

impl Health {
    /// A component that is neither ready nor leading yet.
    pub fn new(component: &'static str) -> Arc<Health> {
        Arc::new(Health { component, ready: AtomicBool::new(false), leading: AtomicBool::new(false) })
    }

    /// Marks the component ready (or, again, not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Marks this process leading until the returned guard is dropped: also when the term's task is
    /// aborted (a lost lease whose controllers do not stop in time) rather than returning.
    pub fn leading(self: &Arc<Health>) -> Leading {
        self.leading.store(true, Ordering::Relaxed);
        Leading(self.clone())
    }

    /// Whether the component is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Whether this process leads.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}

/// A leadership term, as [`Health::leading`] reports it.
#[derive(Debug)]
pub struct Leading(Arc<Health>);

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.leading.store(false, Ordering::Relaxed);
    }
}

/// Where and for whom the status port listens.
#[derive(Clone, Debug)]
pub struct StatusConfig {
    /// `--bind-address` and `--secure-port`.
    pub addr: SocketAddr,
    /// The cluster CA (PEM): client certificates it signed may read `/metrics`.
    pub client_ca_pem: String,
    /// Names and addresses the self-signed certificate is made for (besides `localhost` and 127.0.0.1).
    pub sans: Vec<String>,
}

/// Binds the port (so a clash is reported before the component starts) and returns the server to run.
pub async fn bind(config: &StatusConfig, health: Arc<Health>) -> Result<StatusServer> {
    let tls = server::tls_config(config)?;
    let listener = TcpListener::bind(config.addr).await.map_err(|source| Error::Bind { addr: config.addr, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.addr, source })?;
    Ok(StatusServer { listener, addr, tls, health })
}

/// A bound status port.
pub struct StatusServer {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    health: Arc<Health>,
}

impl StatusServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` is set.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        server::run(self.listener, self.tls, self.health, stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn leadership_ends_with_the_term_however_it_ends() {
        let health = Health::new("kube-scheduler");
        assert!(!health.is_leading() && !health.is_ready());
        let term = health.leading();
        assert!(health.is_leading());
        drop(term);
        assert!(!health.is_leading());
        // An aborted term drops its future, and with it the guard.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let h = health.clone();
            let task = tokio::spawn(async move {
                let _term = h.leading();
                std::future::pending::<()>().await;
            });
            while !health.is_leading() {
                tokio::task::yield_now().await;
            }
            task.abort();
            let _ = task.await;
        });
        assert!(!health.is_leading());
    }
}
