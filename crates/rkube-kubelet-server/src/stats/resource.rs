//! `/metrics/resource`: upstream's resource metrics in the Prometheus text format (node, pod and container
//! CPU and working set, container start times, and whether the runtime's stats could be read).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};

use super::{PodSample, pods, v};
use crate::host;
use crate::state::State;

/// Label values escaped for the Prometheus text format.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The resource metrics text from a set of samples (separate from the collection, for tests).
pub(crate) fn render_resource(node_cpu_ns: Option<u64>, node_ws: u64, now_ms: i64, pods: &[PodSample]) -> String {
    let mut out = String::new();
    let ms = |ns: i64| ns / 1_000_000;
    out.push_str("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n");
    for p in pods {
        for c in &p.containers {
            if let Some(cpu) = &c.cpu
                && let Some(n) = v(&cpu.usage_core_nano_seconds)
            {
                let _ = writeln!(
                    out,
                    "container_cpu_usage_seconds_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                    esc(&c.name),
                    esc(&p.namespace),
                    esc(&p.name),
                    n as f64 / 1e9,
                    ms(cpu.timestamp)
                );
            }
        }
    }
    out.push_str("# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n");
    for p in pods {
        for c in &p.containers {
            if let Some(m) = &c.memory
                && let Some(n) = v(&m.working_set_bytes)
            {
                let _ = writeln!(
                    out,
                    "container_memory_working_set_bytes{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                    esc(&c.name),
                    esc(&p.namespace),
                    esc(&p.name),
                    n,
                    ms(m.timestamp)
                );
            }
        }
    }
    out.push_str("# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n");
    for p in pods {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_start_time_seconds{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {}",
                esc(&c.name),
                esc(&p.namespace),
                esc(&p.name),
                c.start_ns as f64 / 1e9,
                ms(c.start_ns)
            );
        }
    }
    out.push_str("# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\n");
    if let Some(n) = node_cpu_ns {
        let _ = writeln!(out, "node_cpu_usage_seconds_total {} {now_ms}", n as f64 / 1e9);
    }
    out.push_str("# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\n");
    let _ = writeln!(out, "node_memory_working_set_bytes {node_ws} {now_ms}");
    out.push_str("# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n");
    for p in pods {
        if let Some(cpu) = &p.cpu
            && let Some(n) = v(&cpu.usage_core_nano_seconds)
        {
            let _ = writeln!(
                out,
                "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                esc(&p.namespace),
                esc(&p.name),
                n as f64 / 1e9,
                ms(cpu.timestamp)
            );
        }
    }
    out.push_str("# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge\n");
    for p in pods {
        if let Some(m) = &p.memory
            && let Some(n) = v(&m.working_set_bytes)
        {
            let _ = writeln!(
                out,
                "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                esc(&p.namespace),
                esc(&p.name),
                n,
                ms(m.timestamp)
            );
        }
    }
    out
}

pub(crate) async fn resource_metrics(AxState(st): AxState<Arc<State>>) -> Response {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (pods, scrape_error) = match pods(&st).await {
        Ok(p) => (p, 0),
        Err(f) => {
            tracing::debug!(error = %f.message, "resource metrics: the runtime's stats failed");
            (Vec::new(), 1)
        }
    };
    let mut text = render_resource(host::cpu_usage_ns(), host::memory().working_set, now_ms, &pods);
    text.push_str("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\n");
    let _ = writeln!(text, "resource_scrape_error {scrape_error}");
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ContainerSample, pod_totals, u64v};
    use rkube_cri::api;

    fn container(name: &str, cpu_ns: u64, ws: u64) -> ContainerSample {
        ContainerSample {
            name: name.into(),
            start_ns: 1_700_000_000_000_000_000,
            cpu: Some(api::CpuUsage {
                timestamp: 1_700_000_001_000_000_000,
                usage_core_nano_seconds: u64v(cpu_ns),
                usage_nano_cores: u64v(5),
            }),
            memory: Some(api::MemoryUsage {
                timestamp: 1_700_000_001_000_000_000,
                working_set_bytes: u64v(ws),
                ..Default::default()
            }),
            rootfs: None,
        }
    }

    #[test]
    fn resource_metrics_text() {
        let containers = vec![container("a", 1_500_000_000, 100), container("b", 500_000_000, 50)];
        let (cpu, memory) = pod_totals(&containers);
        assert_eq!(cpu.as_ref().and_then(|c| v(&c.usage_core_nano_seconds)), Some(2_000_000_000));
        let pod = PodSample {
            name: "p".into(),
            namespace: "ns".into(),
            uid: "u".into(),
            start_ns: 0,
            containers,
            cpu,
            memory,
            network: None,
            processes: None,
        };
        let text = render_resource(Some(3_000_000_000), 4096, 1_700_000_002_000, &[pod]);
        assert!(
            text.contains(
                "container_cpu_usage_seconds_total{container=\"a\",namespace=\"ns\",pod=\"p\"} 1.5 1700000001000\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "container_memory_working_set_bytes{container=\"b\",namespace=\"ns\",pod=\"p\"} 50 1700000001000\n"
        ));
        assert!(text.contains("pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 2 1700000001000\n"));
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"p\"} 150 1700000001000\n"));
        assert!(text.contains("node_cpu_usage_seconds_total 3 1700000002000\n"));
        assert!(text.contains("node_memory_working_set_bytes 4096 1700000002000\n"));
        assert!(text.contains("# TYPE container_start_time_seconds gauge\n"));
    }
}
