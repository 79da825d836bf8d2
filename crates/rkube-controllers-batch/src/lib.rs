//! Job, CronJob and TTL-after-finished controllers, as upstream kube-controller-manager's
//! (`pkg/controller/job`, `pkg/controller/cronjob`, `pkg/controller/ttlafterfinished` at v1.33): same
//! labels, annotations, finalizer, condition types and reasons, event reasons and messages, timings.
//!
//! One informer per kind (Jobs, Pods, CronJobs) is shared by the three controllers; each controller has its
//! own work queue and workers, started once every cache has its first full list.

mod cronjob;
mod informer;
mod job;
mod ttl;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::sync::watch;

use informer::Informer;

/// Runs the controllers until `stop` is set.
pub async fn run(client: Client, stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let mut jobs = Informer::new(Api::<Job>::all(client.clone()));
    let mut pods = Informer::new(Api::<Pod>::all(client.clone()));
    let mut cronjobs = Informer::new(Api::<CronJob>::all(client.clone()));
    let job_ctl = job::JobController::new(client.clone(), &mut jobs, &mut pods);
    let cron_ctl = cronjob::CronJobController::new(client.clone(), &mut cronjobs, &mut jobs);
    let ttl_ctl = ttl::TtlController::new(client, &mut jobs);
    let synced = vec![jobs.synced(), pods.synced(), cronjobs.synced()];
    let informers = futures::future::join3(jobs.run(), pods.run(), cronjobs.run());
    let (j, c, t) = (job_ctl.clone(), cron_ctl.clone(), ttl_ctl.clone());
    let workers = async move {
        informer::wait_synced(synced).await;
        tracing::info!("job, cronjob and ttl-after-finished controllers started");
        futures::future::join3(j.run(), c.run(), t.run()).await;
    };
    let all = async move {
        futures::future::join(informers, workers).await;
    };
    let result = rkube_client::until_stopped("batch controllers", all, stop).await;
    job_ctl.shutdown();
    cron_ctl.shutdown();
    ttl_ctl.shutdown();
    result
}
