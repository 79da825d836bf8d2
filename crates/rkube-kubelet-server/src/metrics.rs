//! The agent API's own Prometheus metrics (`/metrics`): requests per endpoint with latencies (upstream's
//! `kubelet_http_requests_*`) and the runtime calls this server makes (`kubelet_runtime_operations_*`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

/// Prometheus' default buckets (upstream's request histogram).
const REQUEST_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upstream's runtime operation buckets (exponential from 5 ms by 2.5).
const RUNTIME_BUCKETS: [f64; 8] = [0.005, 0.0125, 0.03125, 0.078125, 0.1953125, 0.48828125, 1.220703125, 3.0517578125];

#[derive(Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.buckets.len() != bounds.len() {
            self.buckets = vec![0; bounds.len()];
        }
        for (b, bound) in self.buckets.iter_mut().zip(bounds) {
            if v <= *bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        for (b, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {b}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (method, path) → latency histogram (its count is the request count).
    requests: BTreeMap<(String, String), Histogram>,
    inflight: BTreeMap<(String, String), i64>,
    /// operation → (latency, errors).
    runtime: BTreeMap<String, (Histogram, u64)>,
}

/// The registry; one per server.
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

/// The label upstream gives a request path: its first segment (`containerLogs`, `exec`, `stats`, ...), two
/// for the metrics endpoints (`metrics/resource`).
pub(crate) fn path_label(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next().unwrap_or_default(), segments.next()) {
        ("metrics", Some(sub)) if !sub.is_empty() => format!("metrics/{sub}"),
        (first, _) => first.to_owned(),
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request started; the returned guard records it when dropped.
    pub(crate) fn request_started(&self, method: &str, path: &str) -> (String, String, Instant) {
        let key = (method.to_owned(), path_label(path));
        *self.lock().inflight.entry(key.clone()).or_default() += 1;
        (key.0, key.1, Instant::now())
    }

    pub(crate) fn request_done(&self, started: (String, String, Instant)) {
        let (method, path, at) = started;
        let key = (method, path);
        let mut inner = self.lock();
        *inner.inflight.entry(key.clone()).or_default() -= 1;
        inner.requests.entry(key).or_default().observe(&REQUEST_BUCKETS, at.elapsed().as_secs_f64());
    }

    /// Runs one runtime call and records its latency and failure.
    pub(crate) async fn runtime_op<T>(
        &self,
        op: &str,
        call: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let at = Instant::now();
        let result = call.await;
        let mut inner = self.lock();
        let entry = inner.runtime.entry(op.to_owned()).or_default();
        entry.0.observe(&RUNTIME_BUCKETS, at.elapsed().as_secs_f64());
        if result.is_err() {
            entry.1 += 1;
        }
        result
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let server = "server_type=\"readwrite\"";
        out.push_str("# HELP kubelet_http_requests_total [ALPHA] Number of the http requests received since the server started\n");
        out.push_str("# TYPE kubelet_http_requests_total counter\n");
        for ((method, path), h) in &inner.requests {
            let _ = writeln!(
                out,
                "kubelet_http_requests_total{{method=\"{method}\",path=\"{path}\",{server}}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP kubelet_http_requests_duration_seconds [ALPHA] Duration in seconds to serve http requests\n",
        );
        out.push_str("# TYPE kubelet_http_requests_duration_seconds histogram\n");
        for ((method, path), h) in &inner.requests {
            let labels = format!("method=\"{method}\",path=\"{path}\",{server}");
            h.render(&mut out, "kubelet_http_requests_duration_seconds", &labels, &REQUEST_BUCKETS);
        }
        out.push_str("# HELP kubelet_http_inflight_requests [ALPHA] Number of the inflight http requests\n");
        out.push_str("# TYPE kubelet_http_inflight_requests gauge\n");
        for ((method, path), n) in &inner.inflight {
            let _ = writeln!(out, "kubelet_http_inflight_requests{{method=\"{method}\",path=\"{path}\",{server}}} {n}");
        }
        out.push_str("# HELP kubelet_runtime_operations_total [ALPHA] Cumulative number of runtime operations by operation type.\n");
        out.push_str("# TYPE kubelet_runtime_operations_total counter\n");
        for (op, (h, _)) in &inner.runtime {
            let _ = writeln!(out, "kubelet_runtime_operations_total{{operation_type=\"{op}\"}} {}", h.count);
        }
        out.push_str("# HELP kubelet_runtime_operations_errors_total [ALPHA] Cumulative number of runtime operation errors by operation type.\n");
        out.push_str("# TYPE kubelet_runtime_operations_errors_total counter\n");
        for (op, (_, errors)) in &inner.runtime {
            let _ = writeln!(out, "kubelet_runtime_operations_errors_total{{operation_type=\"{op}\"}} {errors}");
        }
        out.push_str("# HELP kubelet_runtime_operations_duration_seconds [ALPHA] Duration in seconds of runtime operations. Broken down by operation type.\n");
        out.push_str("# TYPE kubelet_runtime_operations_duration_seconds histogram\n");
        for (op, (h, _)) in &inner.runtime {
            h.render(
                &mut out,
                "kubelet_runtime_operations_duration_seconds",
                &format!("operation_type=\"{op}\""),
                &RUNTIME_BUCKETS,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_requests_and_runtime_calls() {
        let m = Metrics::default();
        let r = m.request_started("GET", "/containerLogs/ns/p/c");
        m.request_done(r);
        let _ = m.runtime_op("exec", async { Ok::<_, tonic::Status>(()) }).await;
        let _ = m.runtime_op("exec", async { Err::<(), _>(tonic::Status::not_found("x")) }).await;
        assert_eq!(path_label("/metrics/resource"), "metrics/resource");
        assert_eq!(path_label("/metrics"), "metrics");
        assert_eq!(path_label("/exec/ns/p/c"), "exec");
        let text = m.render();
        assert!(
            text.contains(
                "kubelet_http_requests_total{method=\"GET\",path=\"containerLogs\",server_type=\"readwrite\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "kubelet_http_inflight_requests{method=\"GET\",path=\"containerLogs\",server_type=\"readwrite\"} 0\n"
        ));
        assert!(text.contains("kubelet_runtime_operations_total{operation_type=\"exec\"} 2\n"));
        assert!(text.contains("kubelet_runtime_operations_errors_total{operation_type=\"exec\"} 1\n"));
        assert!(text.contains("kubelet_runtime_operations_duration_seconds_count{operation_type=\"exec\"} 2\n"));
    }
}
