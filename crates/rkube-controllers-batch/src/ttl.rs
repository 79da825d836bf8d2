//! The TTL-after-finished controller (upstream's `pkg/controller/ttlafterfinished`): deletes a finished Job
//! `spec.ttlSecondsAfterFinished` seconds after its Complete/Failed condition, woken exactly at expiry.
//! Like upstream it deletes with foreground propagation and a uid precondition, after re-reading the Job
//! from the API server in case its TTL changed.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::{Client, ResourceExt};
use rkube_client::Error;
use rkube_client::informer::{Change, Informer};
use rkube_client::queue::WorkQueue;

use crate::job::status::finished;
use crate::job::{key_of, split_key};

/// Workers (upstream's `--concurrent-ttl-after-finished-syncs` default).
const WORKERS: usize = 5;

/// How long until a finished Job with a TTL expires (negative: expired); `None` when it has no TTL, is
/// not finished or is already being deleted.
pub(crate) fn time_left(job: &Job, now: Timestamp) -> Result<Option<SignedDuration>, String> {
    let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
    let (Some(ttl), Some(cond)) = (ttl, finished(job)) else { return Ok(None) };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(at) = cond.last_transition_time.as_ref() else {
        return Err(format!(
            "unable to find the time when the Job {}/{} finished",
            job.namespace().unwrap_or_default(),
            job.name_any()
        ));
    };
    let expire = at.0 + SignedDuration::from_secs(i64::from(ttl));
    Ok(Some(expire.duration_since(now)))
}

/// The TTL controller's shared state.
pub(crate) struct TtlController {
    client: Client,
    jobs: Informer<Job>,
    queue: Arc<WorkQueue<String>>,
}

impl TtlController {
    /// Builds the controller and registers its handler on the Job informer.
    pub(crate) fn new(client: Client, jobs: &Informer<Job>) -> Arc<Self> {
        let c = Arc::new(TtlController {
            client,
            jobs: jobs.clone(),
            queue: WorkQueue::new(Duration::from_millis(5), Duration::from_secs(1000)),
        });
        let w = Arc::downgrade(&c);
        jobs.on_change(move |change| {
            if let (Some(c), Change::Object { new: Some(j), .. }) = (w.upgrade(), change)
                && j.metadata.deletion_timestamp.is_none()
                && j.spec.as_ref().is_some_and(|s| s.ttl_seconds_after_finished.is_some())
                && finished(j).is_some()
            {
                c.queue.add(key_of(&j.namespace().unwrap_or_default(), &j.name_any()));
            }
        });
        c
    }

    /// Runs the workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>) {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|_| {
                let c = self.clone();
                tokio::spawn(async move {
                    while let Some(key) = c.queue.get().await {
                        match c.process(&key).await {
                            Ok(()) => c.queue.forget(&key),
                            Err(e) => {
                                tracing::info!(job = %key, error = %e, "cleaning up finished job");
                                c.queue.add_rate_limited(key.clone());
                            }
                        }
                        c.queue.done(&key);
                    }
                })
            })
            .collect();
        futures::future::join_all(tasks).await;
    }

    /// Stops the workers.
    pub(crate) fn shutdown(&self) {
        self.queue.shutdown();
    }

    /// Whether `job` has expired now; if it expires later, wakes up then.
    fn expired(&self, key: &str, job: &Job) -> rkube_client::Result<bool> {
        match time_left(job, Timestamp::now()).map_err(Error::Invalid)? {
            None => Ok(false),
            Some(left) if left.is_positive() => {
                self.queue.add_after(key.to_owned(), Duration::try_from(left).unwrap_or(Duration::ZERO));
                Ok(false)
            }
            Some(_) => Ok(true),
        }
    }

    async fn process(&self, key: &str) -> rkube_client::Result<()> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else { return Ok(()) };
        if !self.expired(key, &job)? {
            return Ok(());
        }
        // The cached TTL may be stale: decide on the live object.
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let fresh = match api.get(name).await {
            Ok(j) => j,
            Err(e) if rkube_client::api::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(Error::api(format!("getting job {key}"), e)),
        };
        if !self.expired(key, &fresh)? {
            return Ok(());
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None }),
            ..DeleteParams::foreground()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if rkube_client::api::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api(format!("deleting job {key}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::status::{COMPLETE, COMPLETIONS_REACHED, condition};
    use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};

    #[test]
    fn expiry_counts_from_the_finish_condition() {
        let at = |s| Timestamp::from_second(s).expect("ts");
        let mut job = Job {
            spec: Some(JobSpec { ttl_seconds_after_finished: Some(2), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(time_left(&job, at(100)), Ok(None), "not finished");
        job.status = Some(JobStatus {
            conditions: Some(vec![condition(COMPLETE, "True", COMPLETIONS_REACHED, at(100))]),
            ..Default::default()
        });
        assert_eq!(time_left(&job, at(101)), Ok(Some(SignedDuration::from_secs(1))));
        assert_eq!(time_left(&job, at(103)), Ok(Some(SignedDuration::from_secs(-1))));
        job.spec = Some(JobSpec::default());
        assert_eq!(time_left(&job, at(103)), Ok(None), "no TTL");
    }
}
