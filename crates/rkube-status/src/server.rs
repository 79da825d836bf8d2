//! The HTTPS listener and its routes. A connection whose client certificate the cluster CA signed is
//! marked authenticated; only such connections read `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::{Error, Health, Result, StatusConfig};

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the connection presented a client certificate from the cluster CA.
#[derive(Clone, Copy)]
struct Authenticated(bool);

pub(crate) fn tls_config(config: &StatusConfig) -> Result<Arc<rustls::ServerConfig>> {
    let tls = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(config.sans.iter().cloned());
    let cert = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::from_pem_slice(cert.signing_key.serialize_pem().as_bytes()).map_err(|e| tls(&e))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(config.client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|e| tls(&format!("the client CA: {e}")))?).map_err(|e| tls(&e))?;
    }
    if roots.is_empty() {
        return Err(tls(&"the client CA holds no certificate"));
    }
    let provider = rkube_pki::crypto_provider();
    // Anonymous clients may connect (for the health paths); a certificate, when given, must be the CA's.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(&e))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| tls(&e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn routes(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], body)
        .into_response()
}

async fn ok() -> Response {
    text(StatusCode::OK, "ok".to_owned())
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    if health.is_ready() {
        text(StatusCode::OK, "ok".to_owned())
    } else {
        // Upstream's wording for a failed check when `?verbose` is not asked for.
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "[-]api-server failed: reason withheld\nreadyz check failed\n".to_owned(),
        )
    }
}

async fn metrics(State(health): State<Arc<Health>>, Extension(auth): Extension<Authenticated>) -> Response {
    if !auth.0 {
        // What upstream's delegated authentication answers a request without credentials.
        return text(StatusCode::UNAUTHORIZED, "Unauthorized\n".to_owned());
    }
    let mut body = crate::metrics::process_metrics();
    let name = "leader_election_master_status";
    body.push_str(&format!(
        "# HELP {name} Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.\n# TYPE {name} gauge\n{name}{{name=\"{}\"}} {}\n",
        health.component,
        u8::from(health.is_leading())
    ));
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

pub(crate) async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let app = routes(health);
    let mut accept_errors = 0u32;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                accept_errors = 0;
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                accept_errors = (accept_errors + 1).min(6);
                tracing::warn!(error = %e, "status port: accept failed");
                tokio::time::sleep(Duration::from_millis(50 << accept_errors)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "status port: TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "status port: TLS handshake timed out"),
            };
            // The verifier accepted any certificate presented, so one being there means the CA signed it.
            let auth = Authenticated(tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()));
            let service = TowerToHyperService::new(app.layer(Extension(auth)));
            if let Err(e) = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await
            {
                tracing::debug!(%peer, error = %e, "status port: connection ended");
            }
        });
    }
}
