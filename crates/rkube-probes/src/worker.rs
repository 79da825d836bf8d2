//! A probe worker: one probe kind of one container instance, probing every `periodSeconds` once
//! `initialDelaySeconds` have passed since the container started, turning runs of results into verdicts with
//! the success/failure thresholds, and reporting verdict changes (upstream's `worker.doProbe`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::prober::{self, Events, Probed};
use crate::{ProbeKind, ProbeUpdate};

/// One probe's worker.
pub(crate) struct Worker {
    pub(crate) kind: ProbeKind,
    pub(crate) spec: Probe,
    pub(crate) probed: Arc<Probed>,
    pub(crate) events: Events,
    pub(crate) updates: mpsc::Sender<ProbeUpdate>,
    /// When the container started (initialDelaySeconds counts from here).
    pub(crate) started_at: Instant,
    /// Whether the container has started (its startup probe succeeded, or it has none): gates the others.
    pub(crate) started: watch::Receiver<bool>,
    /// The startup worker's side of `started`.
    pub(crate) signal_started: Option<watch::Sender<bool>>,
}

fn seconds(v: Option<i32>, default: u64) -> u64 {
    v.filter(|v| *v > 0).map_or(default, |v| v as u64)
}

impl Worker {
    /// Probes until the worker is aborted, or its verdict ends its use: a liveness or startup failure (the
    /// container will be restarted with a new ID), or a startup success (the container has started).
    pub(crate) async fn run(self) {
        let period = Duration::from_secs(seconds(self.spec.period_seconds, 10));
        let initial_delay =
            Duration::from_secs(self.spec.initial_delay_seconds.filter(|d| *d > 0).map_or(0, |d| d as u64));
        // Liveness and startup probes must use 1 (validation says so; enforce it rather than trust it).
        let success_threshold =
            if self.kind == ProbeKind::Readiness { seconds(self.spec.success_threshold, 1) } else { 1 };
        let failure_threshold = seconds(self.spec.failure_threshold, 3);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Liveness starts out as success (only a failure is news); readiness and startup report their first verdict.
        let mut reported = if self.kind == ProbeKind::Liveness { Some(true) } else { None };
        let mut last: Option<bool> = None;
        let mut run_length = 0u64;
        loop {
            ticker.tick().await;
            if self.started_at.elapsed() < initial_delay {
                continue;
            }
            if self.kind != ProbeKind::Startup && !*self.started.borrow() {
                continue;
            }
            let Some((healthy, message)) = prober::probe(self.kind, &self.spec, &self.probed, &self.events).await
            else {
                continue;
            };
            if last == Some(healthy) {
                run_length += 1;
            } else {
                last = Some(healthy);
                run_length = 1;
            }
            if run_length < if healthy { success_threshold } else { failure_threshold } {
                continue;
            }
            if reported != Some(healthy) {
                reported = Some(healthy);
                let update = ProbeUpdate {
                    pod_uid: self.probed.pod.metadata.uid.clone().unwrap_or_default(),
                    container_name: self.probed.container.name.clone(),
                    container_id: self.probed.container_id.clone(),
                    kind: self.kind,
                    success: healthy,
                    message,
                };
                if self.updates.send(update).await.is_err() {
                    return;
                }
            }
            match (self.kind, healthy) {
                (ProbeKind::Liveness | ProbeKind::Startup, false) => return,
                (ProbeKind::Startup, true) => {
                    if let Some(signal) = &self.signal_started {
                        signal.send_replace(true);
                    }
                    return;
                }
                _ => {}
            }
        }
    }
}
