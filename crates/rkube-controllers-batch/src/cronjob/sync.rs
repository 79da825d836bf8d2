//! One sync of one CronJob (upstream's `sync`, `syncCronJob` and `cleanupFinishedJobs`), returning when to
//! look again: the next scheduled time, or nothing (suspended, invalid schedule).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};
use rkube_client::Error;
use rkube_client::events::EventType;
use rkube_client::pods::{controller_of, controller_ref, is_controlled_by};

use super::CronJobController;
use super::times::{CronTimes, Missed, most_recent, requeue_after};
use crate::job::split_key;
use crate::job::status::{COMPLETE, FAILED};
use rkube_validation::cron::{Schedule, load_location, parse_standard, rfc3339_in};

/// The annotation recording a Job's scheduled time.
const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The schedule as upstream's `formatSchedule` hands it to the parser (`TZ=<timeZone> <schedule>`).
fn format_schedule(cj: &CronJob) -> String {
    let spec = cj.spec.as_ref();
    let schedule = spec.map(|s| s.schedule.clone()).unwrap_or_default();
    if schedule.contains("TZ") {
        return schedule;
    }
    match spec.and_then(|s| s.time_zone.as_deref()) {
        Some(tz) if load_location(tz).is_ok() => format!("TZ={tz} {schedule}"),
        _ => schedule,
    }
}

fn times_of(cj: &CronJob) -> CronTimes {
    CronTimes {
        created: cj.metadata.creation_timestamp.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        last_schedule: cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0),
        starting_deadline: cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds),
    }
}

/// When a CronJob whose schedule changed is next due, if its schedule parses.
pub(super) fn requeue_for(cj: &CronJob, now: Timestamp) -> Option<Duration> {
    let sched = parse_standard(&format_schedule(cj), &TimeZone::system()).ok()?;
    Some(requeue_after(&times_of(cj), now, &sched))
}

fn finished_type(job: &Job) -> Option<&str> {
    let conds = job.status.as_ref()?.conditions.as_deref()?;
    conds.iter().find(|c| (c.type_ == COMPLETE || c.type_ == FAILED) && c.status == "True").map(|c| c.type_.as_str())
}

fn in_active(cj: &CronJob, uid: &str) -> bool {
    active(cj).iter().any(|r| r.uid.as_deref() == Some(uid))
}

fn active(cj: &CronJob) -> &[ObjectReference] {
    cj.status.as_ref().and_then(|s| s.active.as_deref()).unwrap_or(&[])
}

fn remove_active(cj: &mut CronJob, uid: &str) {
    if let Some(list) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        list.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

/// Upstream's `getJobName`: the scheduled time in minutes since the epoch.
pub(crate) fn job_name(cj_name: &str, scheduled: Timestamp) -> String {
    format!("{cj_name}-{}", scheduled.as_second().div_euclid(60))
}

/// Upstream's `getJobFromTemplate2`.
fn job_from_template(cj: &CronJob, scheduled: Timestamp) -> Job {
    let tmpl = cj.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let meta = tmpl.metadata.unwrap_or_default();
    let tz = cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()).and_then(|t| load_location(t).ok());
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_ANNOTATION.into(), rfc3339_in(scheduled, &tz.unwrap_or(TimeZone::UTC)));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..ObjectMeta::default()
        },
        spec: tmpl.spec,
        status: None,
    }
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some(Job::api_version(&()).into_owned()),
        kind: Some(Job::kind(&()).into_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

impl CronJobController {
    fn cronjob_api(&self, ns: &str) -> Api<CronJob> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn job_api(&self, ns: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Syncs the CronJob `key`; returns when to sync it again.
    pub(super) async fn sync(&self, key: &str) -> rkube_client::Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.cronjobs.get(ns, name) else { return Ok(None) };
        let uid = shared.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list_namespace(ns)
            .into_iter()
            .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.kind == "CronJob" && r.name == name))
            .filter(|j| is_controlled_by(&j.metadata, &uid))
            .collect();
        let mut cj = (*shared).clone();
        let cleaned = self.cleanup_finished(&mut cj, &jobs).await;
        let (requeue, changed, err) = self.sync_cronjob(&mut cj, &jobs).await;
        if cleaned || changed {
            if let Some(st) = cj.status.as_mut()
                && st.active.as_ref().is_some_and(Vec::is_empty)
            {
                st.active = None;
            }
            self.cronjob_api(ns)
                .replace_status(name, &PostParams::default(), &cj)
                .await
                .map_err(|e| Error::api(format!("updating the status of cronjob {key}"), e))?;
        }
        match (requeue, err) {
            (Some(after), _) => Ok(Some(after)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    async fn event(&self, cj: &CronJob, kind: EventType, reason: &str, msg: &str) {
        self.recorder.record(cj, kind, reason, msg).await;
    }

    /// Returns (when to look again, whether the status changed, an error to retry on).
    async fn sync_cronjob(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> (Option<Duration>, bool, Option<Error>) {
        let now = Timestamp::now();
        let ns = cj.namespace().unwrap_or_default();
        let mut changed = false;
        let mut children = HashSet::new();
        for j in jobs {
            let juid = j.metadata.uid.clone().unwrap_or_default();
            children.insert(juid.clone());
            let found = in_active(cj, &juid);
            match finished_type(j) {
                None if !found => {
                    // Our own status write may not be in the cache yet: ask the API server.
                    match self.cronjob_api(&ns).get(&cj.name_any()).await {
                        Ok(fresh) if in_active(&fresh, &juid) => {
                            *cj = fresh;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            return (
                                None,
                                changed,
                                Some(Error::api(format!("getting cronjob {ns}/{}", cj.name_any()), e)),
                            );
                        }
                    }
                    let msg = format!("Saw a job that the controller did not create or forgot: {}", j.name_any());
                    self.event(cj, EventType::Warning, "UnexpectedJob", &msg).await;
                }
                None => {}
                Some(cond) => {
                    if found {
                        remove_active(cj, &juid);
                        let msg = format!("Saw completed job: {}, condition: {cond}", j.name_any());
                        self.event(cj, EventType::Normal, "SawCompletedJob", &msg).await;
                        changed = true;
                    }
                    let completed = j.status.as_ref().and_then(|s| s.completion_time.clone());
                    if cond == COMPLETE
                        && let Some(t) = completed
                    {
                        let st = cj.status.get_or_insert_with(Default::default);
                        if st.last_successful_time.as_ref().is_none_or(|l| t.0 > l.0) {
                            st.last_successful_time = Some(t);
                            changed = true;
                        }
                    }
                }
            }
        }
        for r in active(cj).to_vec() {
            if r.uid.as_ref().is_some_and(|u| children.contains(u)) {
                continue;
            }
            let jname = r.name.clone().unwrap_or_default();
            match self.job_api(r.namespace.as_deref().unwrap_or(&ns)).get(&jname).await {
                Err(e) if rkube_client::api::is_not_found(&e) => {
                    let msg = format!("Active job went missing: {jname}");
                    self.event(cj, EventType::Normal, "MissingJob", &msg).await;
                    remove_active(cj, r.uid.as_deref().unwrap_or(""));
                    changed = true;
                }
                Err(e) => return (None, changed, Some(Error::api(format!("getting job {ns}/{jname}"), e))),
                Ok(_) => {}
            }
        }
        if cj.metadata.deletion_timestamp.is_some() {
            return (None, changed, None);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        if let Some(tz) = spec.time_zone.as_deref()
            && let Err(e) = load_location(tz)
        {
            let msg = format!("invalid timeZone: {tz:?}: {e}");
            self.event(cj, EventType::Warning, "UnknownTimeZone", &msg).await;
            return (None, changed, None);
        }
        if spec.suspend == Some(true) {
            return (None, changed, None);
        }
        if spec.schedule.contains("TZ") {
            let msg = format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            );
            self.event(cj, EventType::Warning, "UnsupportedSchedule", &msg).await;
        }
        let sched = match parse_standard(&format_schedule(cj), &TimeZone::system()) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.event(cj, EventType::Warning, "UnparseableSchedule", &msg).await;
                return (None, changed, None);
            }
        };
        let scheduled = match self.due(cj, now, &sched).await {
            Ok(Some(t)) => t,
            Ok(None) => return (Some(requeue_after(&times_of(cj), now, &sched)), changed, None),
            Err(e) => {
                let msg = format!("invalid schedule: {} : {e}", spec.schedule);
                self.event(cj, EventType::Warning, "InvalidSchedule", &msg).await;
                return (None, changed, None);
            }
        };
        let next = |cj: &CronJob| Some(requeue_after(&times_of(cj), now, &sched));
        if let Some(d) = spec.starting_deadline_seconds
            && scheduled + SignedDuration::from_secs(d) < now
        {
            let when = scheduled.to_zoned(TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
            let msg = format!("Missed scheduled time to start a job: {when}");
            self.event(cj, EventType::Warning, "MissSchedule", &msg).await;
            return (next(cj), changed, None);
        }
        let name = job_name(&cj.name_any(), scheduled);
        let last = cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0);
        if active(cj).iter().any(|r| r.name.as_deref() == Some(name.as_str())) || last == Some(scheduled) {
            return (next(cj), changed, None);
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && !active(cj).is_empty() {
            let msg = "Not starting job because prior execution is running and concurrency policy is Forbid";
            self.event(cj, EventType::Normal, "JobAlreadyActive", msg).await;
            return (next(cj), changed, None);
        }
        if policy == "Replace" {
            for r in active(cj).to_vec() {
                let jname = r.name.clone().unwrap_or_default();
                let job = match self.job_api(r.namespace.as_deref().unwrap_or(&ns)).get(&jname).await {
                    Ok(j) => j,
                    Err(e) => {
                        self.event(cj, EventType::Warning, "FailedGet", &format!("Get job: {e}")).await;
                        return (None, changed, Some(Error::api(format!("getting job {ns}/{jname}"), e)));
                    }
                };
                if !self.delete_job(cj, &job).await {
                    return (None, changed, Some(Error::Invalid(format!("could not replace job {ns}/{jname}"))));
                }
                changed = true;
            }
        }
        let req = job_from_template(cj, scheduled);
        let created = match self.job_api(&ns).create(&PostParams::default(), &req).await {
            Ok(j) => {
                self.event(cj, EventType::Normal, "SuccessfulCreate", &format!("Created job {}", j.name_any())).await;
                j
            }
            Err(e) if rkube_client::api::is_namespace_terminating(&e) => {
                return (None, changed, Some(Error::api(format!("creating job {ns}/{name}"), e)));
            }
            Err(e) if rkube_client::api::is_already_exists(&e) => {
                let existing = match self.job_api(&ns).get(&name).await {
                    Ok(j) => j,
                    Err(e) => return (None, changed, Some(Error::api(format!("getting job {ns}/{name}"), e))),
                };
                let ours = is_controlled_by(&existing.metadata, cj.metadata.uid.as_deref().unwrap_or(""));
                if !ours || in_active(cj, existing.metadata.uid.as_deref().unwrap_or("")) {
                    return (None, changed, None);
                }
                tracing::info!(cronjob = %cj.name_any(), job = %name, "job already exists");
                existing
            }
            Err(e) => {
                self.event(cj, EventType::Warning, "FailedCreate", &format!("Error creating job: {e}")).await;
                return (None, changed, Some(Error::api(format!("creating job {ns}/{name}"), e)));
            }
        };
        let st = cj.status.get_or_insert_with(Default::default);
        st.active.get_or_insert_with(Vec::new).push(reference(&created));
        st.last_schedule_time = Some(Time(scheduled));
        (next(cj), true, None)
    }

    /// Upstream's `nextScheduleTime`: the scheduled time now due, if any (warning when many were missed).
    async fn due(&self, cj: &CronJob, now: Timestamp, sched: &Schedule) -> Result<Option<Timestamp>, String> {
        let r = most_recent(&times_of(cj), now, sched, true)?;
        let Some(t) = r.most_recent.filter(|t| *t <= now) else { return Ok(None) };
        if r.missed == Missed::Many {
            let msg = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
            self.event(cj, EventType::Warning, "TooManyMissedTimes", msg).await;
        }
        Ok(Some(t))
    }

    /// Deletes a Job (background propagation) and drops it from the active list.
    async fn delete_job(&self, cj: &mut CronJob, job: &Job) -> bool {
        let ns = job.namespace().unwrap_or_default();
        if let Err(e) = self.job_api(&ns).delete(&job.name_any(), &DeleteParams::background()).await
            && !rkube_client::api::is_not_found(&e)
        {
            self.event(cj, EventType::Warning, "FailedDelete", &format!("Deleted job: {e}")).await;
            return false;
        }
        remove_active(cj, job.metadata.uid.as_deref().unwrap_or(""));
        self.event(cj, EventType::Normal, "SuccessfulDelete", &format!("Deleted job {}", job.name_any())).await;
        true
    }

    /// Deletes the oldest finished Jobs beyond the history limits; returns whether the status changed.
    async fn cleanup_finished(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
        let spec = cj.spec.clone().unwrap_or_default();
        let mut changed = false;
        for (kind, limit) in [(COMPLETE, spec.successful_jobs_history_limit), (FAILED, spec.failed_jobs_history_limit)]
        {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&Job> = jobs.iter().map(|j| &**j).filter(|j| finished_type(j) == Some(kind)).collect();
            let extra = done.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
            if extra == 0 {
                continue;
            }
            done.sort_by(|a, b| {
                let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
                match (start(a), start(b)) {
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (x, y) if x == y => a.name_any().cmp(&b.name_any()),
                    (x, y) => x.cmp(&y),
                }
            });
            for j in done.into_iter().take(extra) {
                changed |= self.delete_job(cj, j).await;
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobTemplateSpec};

    #[test]
    fn jobs_are_named_and_annotated_from_the_scheduled_time() {
        let t: Timestamp = "2024-01-11T14:00:00Z".parse().expect("ts");
        assert_eq!(job_name("hello", t), "hello-28416360");
        let cj = CronJob {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "0 9 * * *".into(),
                time_zone: Some("America/New_York".into()),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("a".to_owned(), "b".to_owned())].into()),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            }),
            status: None,
        };
        assert_eq!(format_schedule(&cj), "TZ=America/New_York 0 9 * * *");
        let job = job_from_template(&cj, t);
        assert_eq!(job.metadata.name.as_deref(), Some("hello-28416360"));
        let ann = job.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann.get(SCHEDULED_ANNOTATION).map(String::as_str), Some("2024-01-11T09:00:00-05:00"));
        assert!(is_controlled_by(&job.metadata, "u"));
        assert_eq!(job.metadata.labels.unwrap_or_default().get("a").map(String::as_str), Some("b"));
    }
}
