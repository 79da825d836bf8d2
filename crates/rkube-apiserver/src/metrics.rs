//! Prometheus metrics of the API server: request counts and latencies by verb, resource and code,
//! in upstream's metric names (`apiserver_request_total`, `apiserver_request_duration_seconds`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;

/// Upper bounds of the latency histogram, in seconds (a subset of upstream's buckets).
const BUCKETS: &[f64] = &[0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The request metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    totals: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// Watches fed from the store right now (they started behind the watch cache's history).
    pub(crate) store_watches: std::sync::atomic::AtomicI64,
    /// Watches that started (or resumed) behind the watch cache's history, since the server started.
    pub(crate) store_watches_started: std::sync::atomic::AtomicU64,
}

fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The resource part of a path, for labels (`/api/v1/namespaces/x/pods/y` → `pods`).
fn resource_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match parts.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return String::new(),
    };
    match rest {
        ["namespaces", _, r, ..] => (*r).to_owned(),
        [r, ..] => (*r).to_owned(),
        [] => String::new(),
    }
}

impl Metrics {
    /// Records one request.
    pub(crate) fn observe(&self, method: &Method, path: &str, code: u16, took: Duration) {
        let verb = verb_of(method);
        let resource = resource_of(path);
        *self
            .totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((verb.to_owned(), resource.clone(), code))
            .or_default() += 1;
        let mut d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let h = d
            .entry(verb.to_owned())
            .or_insert_with(|| Histogram { counts: vec![0; BUCKETS.len()], ..Default::default() });
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), n) in self.totals.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push_str(&format!(
                "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for (verb, h) in self.durations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",le=\"{b}\"}} {}\n",
                    h.counts[i]
                ));
            }
            out.push_str(&format!(
                "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!("apiserver_request_duration_seconds_sum{{verb=\"{verb}\"}} {}\n", h.sum));
            out.push_str(&format!("apiserver_request_duration_seconds_count{{verb=\"{verb}\"}} {}\n", h.count));
        }
        out.push_str("# HELP rkube_apiserver_store_watches Watches read from the store because they resumed behind the watch cache's history; they move to the cache once it holds what they need.\n# TYPE rkube_apiserver_store_watches gauge\n");
        out.push_str(&format!(
            "rkube_apiserver_store_watches {}\n",
            self.store_watches.load(std::sync::atomic::Ordering::Relaxed)
        ));
        out.push_str("# HELP rkube_apiserver_store_watches_total Watches that started behind the watch cache's history and were read from the store.\n# TYPE rkube_apiserver_store_watches_total counter\n");
        out.push_str(&format!(
            "rkube_apiserver_store_watches_total {}\n",
            self.store_watches_started.load(std::sync::atomic::Ordering::Relaxed)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.observe(&Method::GET, "/api/v1/namespaces/a/pods/x", 200, Duration::from_millis(3));
        m.observe(&Method::GET, "/apis/apps/v1/deployments", 200, Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"GET\"} 1"));
        assert!(text.contains("apiserver_request_total{code=\"200\",resource=\"deployments\",verb=\"GET\"} 1"));
        assert!(text.contains("apiserver_request_duration_seconds_count{verb=\"GET\"} 2"));
    }
}
