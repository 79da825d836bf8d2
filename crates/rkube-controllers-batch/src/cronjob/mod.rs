//! The CronJob controller (upstream's `pkg/controller/cronjob`, v2): creates a Job per scheduled time,
//! named `<cronjob>-<minutes since the epoch>`, honours the concurrency policy, suspend and the starting
//! deadline, keeps `status.active`/`lastScheduleTime`/`lastSuccessfulTime`, prunes finished Jobs past the
//! history limits, and sleeps until exactly the next scheduled time (no polling).
//!
//! `schedule.rs` parses and steps schedules, `times.rs` decides which time is due, `sync.rs` acts.

mod sync;
pub(crate) mod times;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::{Client, ResourceExt};
use rkube_client::events::Recorder;
use rkube_client::informer::{Change, Informer};
use rkube_client::pods::controller_of;
use rkube_client::queue::WorkQueue;

use crate::job::key_of;

/// Workers syncing CronJobs (upstream's `--concurrent-cron-job-syncs` default).
const WORKERS: usize = 5;

/// The CronJob controller's shared state.
pub(crate) struct CronJobController {
    client: Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
}

fn cj_key(cj: &CronJob) -> String {
    key_of(&cj.namespace().unwrap_or_default(), &cj.name_any())
}

impl CronJobController {
    /// Builds the controller and registers its handlers on the CronJob and Job informers.
    pub(crate) fn new(client: Client, cronjobs: &Informer<CronJob>, jobs: &Informer<Job>) -> Arc<Self> {
        let c = Arc::new(CronJobController {
            recorder: Recorder::new(client.clone(), "cronjob-controller", None),
            client,
            cronjobs: cronjobs.clone(),
            jobs: jobs.clone(),
            queue: WorkQueue::new(Duration::from_secs(1), Duration::from_secs(60)),
        });
        let w = Arc::downgrade(&c);
        cronjobs.on_change(move |change| {
            if let (Some(c), Change::Object { old, new }) = (w.upgrade(), change) {
                c.cronjob_changed(old, new);
            }
        });
        let w = Arc::downgrade(&c);
        jobs.on_change(move |change| {
            if let (Some(c), Change::Object { old, new }) = (w.upgrade(), change) {
                c.job_changed(old, new);
            }
        });
        c
    }

    /// Runs the workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>) {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|_| {
                let c = self.clone();
                tokio::spawn(async move { c.worker().await })
            })
            .collect();
        futures::future::join_all(tasks).await;
    }

    /// Stops the workers.
    pub(crate) fn shutdown(&self) {
        self.queue.shutdown();
    }

    async fn worker(&self) {
        while let Some(key) = self.queue.get().await {
            match self.sync(&key).await {
                Err(e) => {
                    tracing::info!(cronjob = %key, error = %e, "syncing cronjob");
                    self.queue.add_rate_limited(key.clone());
                }
                Ok(Some(after)) => {
                    self.queue.forget(&key);
                    self.queue.add_after(key.clone(), after);
                }
                Ok(None) => {}
            }
            self.queue.done(&key);
        }
    }

    fn cronjob_changed(&self, old: Option<&CronJob>, new: Option<&CronJob>) {
        match (old, new) {
            (Some(o), Some(n)) => {
                let sched = |c: &CronJob| c.spec.as_ref().map(|s| (s.schedule.clone(), s.time_zone.clone()));
                if sched(o) != sched(n) {
                    // A new schedule: wait for its next time (an invalid one is reported by the sync).
                    if let Some(after) = sync::requeue_for(n, jiff::Timestamp::now()) {
                        self.queue.add_after(cj_key(n), after);
                        return;
                    }
                }
                self.queue.add(cj_key(n));
            }
            (_, Some(n)) => self.queue.add(cj_key(n)),
            (Some(o), None) => self.queue.add(cj_key(o)),
            (None, None) => {}
        }
    }

    fn job_changed(&self, old: Option<&Job>, new: Option<&Job>) {
        let owners = [old, new].into_iter().flatten().filter_map(|j| {
            let r = controller_of(&j.metadata)?;
            (r.kind == "CronJob").then(|| (j.namespace().unwrap_or_default(), r.name.clone(), r.uid.clone()))
        });
        for (ns, name, uid) in owners {
            if let Some(cj) = self.cronjobs.get(&ns, &name).filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()))
            {
                self.queue.add(cj_key(&cj));
            }
        }
    }
}
