//! Job, CronJob and TTL-after-finished controllers, as upstream kube-controller-manager's
//! (`pkg/controller/job`, `pkg/controller/cronjob`, `pkg/controller/ttlafterfinished` at v1.33): same
//! labels, annotations, finalizer, condition types and reasons, event reasons and messages, timings.
//!
//! The three controllers read Jobs, Pods and CronJobs from the process's shared informers; each controller
//! has its own work queue and workers, started once every cache has its first full list. The handlers ignore
//! `Change::Relisted`: a relist's differences already arrive as object changes, which is all they act on.

mod cronjob;
mod job;
mod ttl;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use rkube_client::informer::SharedInformers;
use tokio::sync::watch;

/// Runs the controllers until `stop` is set, with informers of their own.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    run_shared(SharedInformers::new(client, stop.clone()), stop).await
}

/// Runs the controllers until `stop` is set, reading every kind through `informers`.
pub async fn run_shared(informers: SharedInformers, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let client = informers.client().clone();
    let jobs = informers.get::<Job>();
    let pods = informers.get::<Pod>();
    let cronjobs = informers.get::<CronJob>();
    let job_ctl = job::JobController::new(client.clone(), &jobs, &pods);
    let cron_ctl = cronjob::CronJobController::new(client.clone(), &cronjobs, &jobs);
    let ttl_ctl = ttl::TtlController::new(client, &jobs);
    let (j, c, t) = (job_ctl.clone(), cron_ctl.clone(), ttl_ctl.clone());
    let workers = async move {
        jobs.wait_synced().await;
        pods.wait_synced().await;
        cronjobs.wait_synced().await;
        tracing::info!("job, cronjob and ttl-after-finished controllers started");
        futures::future::join3(j.run(), c.run(), t.run()).await;
    };
    let result = rkube_client::until_stopped("batch controllers", workers, stop).await;
    job_ctl.shutdown();
    cron_ctl.shutdown();
    ttl_ctl.shutdown();
    result
}
