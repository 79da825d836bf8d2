//! rkube's API server: kubectl-compatible REST over HTTPS on top of a [`rkube_store::Store`].
//! The only component that talks to the store; everything else uses the API.

mod admission;
pub mod authn;
pub mod authz;
mod bootstrap;
pub mod cache;
pub mod catalog;
pub mod codec;
mod crd;
mod discovery;
mod endpoint_reconciler;
mod eviction;
pub mod fieldvalidation;
mod handler;
mod health;
mod info;
pub mod kinds;
pub mod meta;
mod metrics;
mod nodeproxy;
pub mod patch;
pub mod printers;
mod query;
mod quota;
pub mod rbac;
pub mod registry;
pub mod request_info;
pub mod resource;
mod resources;
mod reviews;
mod selector;
mod server;
pub mod services;
mod state;
mod subresources;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rkube_store::{KeyLayout, Store};
use tokio::sync::watch as signal;

/// What the API server needs to start.
#[derive(Clone)]
pub struct ApiServerConfig {
    /// Where to listen (e.g. 0.0.0.0:6443).
    pub bind: SocketAddr,
    /// `host:port` clients should use (discovery's serverAddressByClientCIDRs).
    pub advertise: String,
    /// The store key prefix (`--etcd-prefix`).
    pub key_prefix: String,
    /// The cluster PKI (serving certificate, CA for client certificates).
    pub pki: Arc<rkube_pki::Pki>,
    /// The service ClusterIP range and NodePort range.
    pub service_ranges: services::ServiceRanges,
    /// Changes the watch cache keeps per resource (`--default-watch-cache-size`).
    pub watch_cache_size: usize,
}

/// The default of `--default-watch-cache-size`: a few seconds of pod changes at the scheduling benchmark's rate,
/// so a watcher that falls behind resumes from memory.
pub const DEFAULT_WATCH_CACHE_SIZE: usize = 10_000;

/// Errors that stop the API server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address is taken or not ours.
    #[error(
        "cannot listen on {addr}: {source}; is another API server (or rkube) already running? choose another --https-listen-port"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be read at start.
    #[error("the watch cache could not load the store: {0}")]
    Store(#[from] rkube_store::Error),
    /// The TLS configuration could not be built.
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] rkube_pki::PkiError),
    /// The service-account key could not be used.
    #[error("the service-account signing key cannot be used: {0}")]
    Keys(String),
    /// The bootstrap objects could not be written.
    #[error("creating the default namespaces and RBAC roles failed: {0}")]
    Bootstrap(rkube_apimachinery::ApiError),
}

/// Runs the API server until `shutdown` turns true. `ready` is set once it serves requests.
pub async fn run(
    config: ApiServerConfig,
    store: Arc<dyn Store>,
    shutdown: signal::Receiver<bool>,
    ready: signal::Sender<bool>,
) -> Result<(), Error> {
    let keys = KeyLayout::new(&config.key_prefix);
    let cache =
        cache::Cache::start(store.clone(), format!("{}/", keys.prefix()), config.watch_cache_size, shutdown.clone())
            .await?;
    let catalog = Arc::new(catalog::Catalog::default());
    let audiences = vec![rkube_auth::sa_token::DEFAULT_ISSUER.to_owned()];
    let tokens = rkube_auth::TokenIssuer::new(
        config.pki.service_account_key_pem(),
        rkube_auth::sa_token::DEFAULT_ISSUER,
        audiences,
    )
    .map_err(|e| Error::Keys(e.to_string()))?;
    let verifier = tokens.verifier();
    let kubelet_tls = rkube_pki::client_tls_config(config.pki.ca_cert_der(), Some(config.pki.kubelet_client()))?;
    let app = Arc::new(state::AppState {
        kubelet_tls,
        tokens,
        verifier,
        registry: registry::Registry::new(store, keys.clone(), cache.clone(), config.service_ranges.clone()),
        catalog,
        rbac: rbac::Rbac::new(cache, keys.prefix()),
        metrics: metrics::Metrics::default(),
        advertise: config.advertise.clone(),
        ready: std::sync::atomic::AtomicBool::new(false),
    });
    let tls = config.pki.server_tls_config()?;
    let listener =
        tokio::net::TcpListener::bind(config.bind).await.map_err(|source| Error::Bind { addr: config.bind, source })?;
    let router = axum::Router::new().fallback(handler::dispatch).with_state(app.clone());
    let serving = tokio::spawn(server::serve(listener, tls, router, shutdown.clone()));
    bootstrap::run(&app.registry, &config.advertise, config.pki.ca_cert_pem()).await.map_err(Error::Bootstrap)?;
    // With several servers, `default/kubernetes` lists every live one (each renews a Lease), as upstream's
    // lease endpoint reconciler does.
    let (reconciler, stop) = (app.clone(), shutdown.clone());
    tokio::spawn(async move { endpoint_reconciler::run(&reconciler.registry, &reconciler.advertise, stop).await });
    tokio::spawn(crd::run(app.clone(), shutdown.clone()));
    app.ready.store(true, Ordering::Relaxed);
    let _ = ready.send(true);
    tracing::info!(addr = %config.bind, "API server ready");
    let _ = serving.await;
    Ok(())
}
