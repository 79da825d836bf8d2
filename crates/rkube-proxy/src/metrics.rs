//! The proxy's metrics in Prometheus text format under upstream's names, and the `/healthz` + `/metrics`
//! HTTP server.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

/// Upstream's `kubeproxy_sync_proxy_rules_duration_seconds` buckets (exponential, 1 ms × 2^i).
const BUCKETS: [f64; 15] =
    [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters and gauges the sync loop updates.
#[derive(Debug, Default)]
pub struct Metrics {
    durations: Mutex<Histogram>,
    /// Failed `iptables-restore`/`nft -f` runs (`kubeproxy_sync_proxy_rules_iptables_restore_failures_total`).
    pub restore_failures: AtomicU64,
    /// Successful syncs.
    pub syncs: AtomicU64,
    /// Rules in the filter table (iptables) or in the kube-proxy table (nftables).
    pub rules_filter: AtomicU64,
    /// Rules in the nat table (iptables).
    pub rules_nat: AtomicU64,
    /// Unix seconds of the last successful sync.
    pub last_sync: AtomicU64,
    /// Conntrack flushes that failed or could not run.
    pub conntrack_failures: AtomicU64,
}

impl Metrics {
    /// Records one sync's duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Ok(mut h) = self.durations.lock() {
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Marks a successful sync now.
    pub fn synced(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.last_sync.store(now, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let name = "kubeproxy_sync_proxy_rules_duration_seconds";
        let _ = writeln!(t, "# HELP {name} SyncProxyRules latency in seconds\n# TYPE {name} histogram");
        if let Ok(h) = self.durations.lock() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(t, "{name}_bucket{{le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ =
                writeln!(t, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", h.count, h.sum, h.count);
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            t,
            "# HELP kubeproxy_sync_proxy_rules_iptables_total Total number of iptables rules owned by kube-proxy\n\
             # TYPE kubeproxy_sync_proxy_rules_iptables_total gauge\n\
             kubeproxy_sync_proxy_rules_iptables_total{{table=\"filter\"}} {}\n\
             kubeproxy_sync_proxy_rules_iptables_total{{table=\"nat\"}} {}",
            load(&self.rules_filter),
            load(&self.rules_nat)
        );
        for (n, help, v) in [
            (
                "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
                "Cumulative proxy iptables/nft restore failures",
                &self.restore_failures,
            ),
            ("kubeproxy_sync_proxy_rules_total", "Successful syncs of the proxy rules", &self.syncs),
            (
                "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                "The last time proxy rules were successfully synced",
                &self.last_sync,
            ),
            (
                "kubeproxy_conntrack_flush_failures_total",
                "Conntrack flushes that failed or could not run",
                &self.conntrack_failures,
            ),
        ] {
            let kind = if n.ends_with("_total") { "counter" } else { "gauge" };
            let _ = writeln!(t, "# HELP {n} {help}\n# TYPE {n} {kind}\n{n} {}", load(v));
        }
        t
    }
}

async fn healthz(State(m): State<Arc<Metrics>>) -> (StatusCode, String) {
    if m.syncs.load(Ordering::Relaxed) > 0 {
        (StatusCode::OK, "ok".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "proxy rules not yet synced".into())
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> String {
    m.render()
}

/// Serves `/healthz` and `/metrics` on `listener` until `stop` is set.
pub async fn serve(
    listener: tokio::net::TcpListener,
    m: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(m);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// Binds the metrics address (separate so `run` fails early on a taken port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
