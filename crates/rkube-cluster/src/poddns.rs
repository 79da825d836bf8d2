//! The cluster-DNS part of `rkube bench net`: a 1-node `rkube cluster` with the service proxy and cluster DNS
//! on, a pause pod, and a caller-given DNS probe run on a thread that entered the pod's network namespace, so
//! its queries take a pod's path (the ClusterIP 10.254.0.2, the proxy's DNAT, the node's DNS).

use std::path::Path;
use std::time::Duration;

use crate::bench::{pause_pods, pod_netns};
use crate::nodes::NodeOptions;
use crate::{Error, Result};

/// What a DNS probe measured from inside the pod.
#[derive(Clone, Debug)]
pub struct DnsFigures {
    /// Concurrent clients.
    pub clients: usize,
    /// How long they queried.
    pub duration: Duration,
    /// Queries answered.
    pub queries: u64,
    /// Queries that failed or timed out.
    pub errors: u64,
    /// Answered queries per second.
    pub qps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// A measure run inside the pod's network namespace (the thread calling it has entered it); it must create its
/// sockets on that thread (e.g. on a current-thread runtime built there).
pub type DnsProbe = dyn Fn() -> std::result::Result<DnsFigures, String> + Send + Sync;

/// Brings up a 1-node cluster named `name` under `parent` with services on, starts a pause pod on n1 and runs
/// `probe` in its network namespace; the cluster is removed afterwards (also on failure).
pub(crate) fn measure_dns(
    rkube: &Path,
    parent: &Path,
    name: &str,
    probe: &DnsProbe,
    progress: &mut dyn FnMut(String),
) -> Result<DnsFigures> {
    progress(format!("[bench] cluster DNS: 1-node cluster {name} with the proxy and DNS"));
    let node = NodeOptions::plain("vxlan", 1, 0, true);
    let (layout, guard) = crate::bench::up_guarded(rkube, parent, name, 1, node, progress)?;
    let ips = pause_pods(&layout, &["n1"])?;
    let netns = pod_netns(&layout, ips[0])?;
    progress(format!("[bench] cluster DNS: querying from pod {}", ips[0]));
    let figures = std::thread::scope(|s| {
        s.spawn(|| {
            crate::netperf::enter(&netns)?;
            probe().map_err(|e| Error::Invalid(format!("DNS from a pod: {e}")))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Invalid("the DNS probe thread panicked".into())))
    });
    drop(guard);
    figures
}
