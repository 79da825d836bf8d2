//! Pod workers (upstream's `pod_workers.go`): one task per pod UID runs its syncs one at a time — sync a
//! live pod, terminate a deleted one, clean up one the API no longer has — woken by the pod source, the
//! PLEG and probe verdicts, and every 10 s otherwise; failures retry with back-off.

use std::sync::Arc;
use std::time::Duration;

use rkube_probes::{ProbeKind, ProbeUpdate};
use tokio::sync::{Notify, mpsc, watch};

use crate::Kubelet;

/// Upstream's periodic resync of every pod.
pub(crate) const RESYNC: Duration = Duration::from_secs(10);

/// What a worker does after one pass.
pub(crate) enum Next {
    /// Sync again after this long (or when woken).
    After(Duration),
    /// Nothing of the pod is left: end the worker unless the pod came back.
    Done,
}

/// Runs the worker of one pod UID until the pod is gone and cleaned up, or the kubelet stops.
pub(crate) async fn run(k: Arc<Kubelet>, uid: String, wake: Arc<Notify>) {
    let mut stop = k.stop.clone();
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let outcome = match k.pod(&uid) {
            None => crate::cleanup::cleanup(&k, &uid).await,
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => crate::sync::terminate(&k, &pod).await,
            Some(pod) => crate::sync::sync(&k, &pod).await,
        };
        let delay = match outcome {
            Ok(Next::Done) => {
                if k.retire(&uid) {
                    return;
                }
                continue;
            }
            Ok(Next::After(d)) => {
                failures = 0;
                d
            }
            Err(e) => {
                tracing::warn!(pod_uid = %uid, error = %e, "syncing pod");
                failures = failures.saturating_add(1);
                Duration::from_millis(500u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(30))
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            _ = rkube_client::stopped(&mut stop) => return,
        }
    }
}

/// Applies probe verdicts and wakes the pods they concern.
pub(crate) async fn probe_updates(
    k: Arc<Kubelet>,
    mut updates: mpsc::Receiver<ProbeUpdate>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let u = tokio::select! {
            u = updates.recv() => match u { Some(u) => u, None => return },
            _ = rkube_client::stopped(&mut stop) => return,
        };
        {
            let mut m = k.memory();
            let v = m.verdicts.entry(u.container_id.clone()).or_default();
            match u.kind {
                ProbeKind::Liveness => v.live = Some(u.success),
                ProbeKind::Readiness => v.ready = Some(u.success),
                ProbeKind::Startup => v.started = Some(u.success),
            }
        }
        k.wake(&u.pod_uid);
    }
}
