//! What every handler shares: the runtime connection, the metrics registry, the node's facts and the stop
//! signal (long streams end with the server).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::watch;

use crate::metrics::Metrics;

/// Shared handler state.
pub(crate) struct State {
    pub(crate) runtime: rkube_cri::Runtime,
    pub(crate) metrics: Metrics,
    /// Where relative CRI log paths are resolved.
    pub(crate) pod_logs_dir: PathBuf,
    pub(crate) node_name: String,
    pub(crate) stop: watch::Receiver<bool>,
    /// The node's previous CPU sample (when, cumulative ns), to turn the counter into `usageNanoCores`.
    pub(crate) cpu_sample: Mutex<Option<(Instant, u64)>>,
}
