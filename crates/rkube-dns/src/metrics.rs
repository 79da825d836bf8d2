//! Query counters by response code, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Responses sent, counted by rcode (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, ...), as CoreDNS's
/// `coredns_dns_responses_total{rcode}`.
#[derive(Debug, Default)]
pub struct Metrics {
    by_rcode: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts one response with this rcode (its upper-case mnemonic).
    pub(crate) fn count(&self, rcode: &str) {
        let mut map = self.by_rcode.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(rcode.to_owned()).or_default() += 1;
    }

    /// The count so far for one rcode.
    pub fn responses(&self, rcode: &str) -> u64 {
        self.by_rcode.lock().unwrap_or_else(|e| e.into_inner()).get(rcode).copied().unwrap_or(0)
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let map = self.by_rcode.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
            "# HELP rkube_dns_responses_total DNS responses sent, by response code.\n\
             # TYPE rkube_dns_responses_total counter\n",
        );
        for (rcode, n) in map.iter() {
            out.push_str(&format!("rkube_dns_responses_total{{rcode=\"{rcode}\"}} {n}\n"));
        }
        out
    }
}

/// Serves `GET /metrics` (the counters) and `GET /health` on `listener` until `stop` turns true, as CoreDNS's
/// `prometheus :9153` and `health` plugins do.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|axum::extract::State(m): axum::extract::State<Arc<Metrics>>| async move { m.render() }),
        )
        .route("/health", axum::routing::get(|| async { "OK" }))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// The mnemonic of a 4-bit header rcode, as dig and CoreDNS's metrics spell it.
pub(crate) fn rcode_name(code: u8) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}
