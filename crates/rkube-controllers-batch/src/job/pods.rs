//! Facts about a Job's pods (tracking finalizer, completion index, failure, finish time, deletion order) and
//! the pods the Job controller creates from the template.

use std::cmp::Ordering;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use kube::ResourceExt;
use rkube_client::pods::{is_ready, is_terminal, phase, pod_from_template, ready_since};

/// The finalizer that keeps a finished pod until the Job has counted it.
pub(crate) const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation (and label) holding an Indexed Job pod's completion index.
pub(crate) const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable Indexed Job containers read their index from.
const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Upstream's `names.MaxGeneratedNameLength` (63 minus the 5 random characters).
const MAX_GENERATED_PREFIX: usize = 58;

/// Whether the pod still carries the Job tracking finalizer.
pub(crate) fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// The pod's completion index from its annotation (`None` when missing or not a non-negative integer).
pub(crate) fn completion_index(pod: &Pod) -> Option<i32> {
    pod.annotations().get(INDEX_KEY)?.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// Only failed pods are replaced (not terminating ones): `podReplacementPolicy: Failed` or a pod failure
/// policy.
pub(crate) fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Upstream's `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before succeeding.
pub(crate) fn is_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// Being deleted but not finished (upstream's `CountTerminatingPods`).
pub(crate) fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !is_terminal(pod)
}

/// When the pod finished (upstream's `getFinishedTime`): the last container's exit, else when it turned
/// not ready, else its deletion, else its creation.
pub(crate) fn finished_time(pod: &Pod) -> Timestamp {
    if let Some(t) = containers_finished(pod) {
        return t;
    }
    let ready_false = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| {
        cs.iter().find(|c| c.type_ == "Ready" && c.status == "False").and_then(|c| c.last_transition_time.as_ref())
    });
    if let Some(t) = ready_false {
        return t.0;
    }
    if let Some(d) = &pod.metadata.deletion_timestamp {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return d.0 - SignedDuration::from_secs(grace);
    }
    pod.metadata.creation_timestamp.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

fn containers_finished(pod: &Pod) -> Option<Timestamp> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let mut latest: Option<Timestamp> = None;
    for cs in statuses {
        let t = cs.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref()?.0;
        latest = Some(latest.map_or(t, |l| l.max(t)));
    }
    latest
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn max_restarts(pod: &Pod) -> i32 {
    let s = pod.status.as_ref();
    let all = s.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten();
    all.map(|c| c.restart_count).max().unwrap_or(0)
}

/// Upstream's `ActivePods` order: pods earlier in it are deleted first (unscheduled, pending, not ready,
/// ready for less time, more restarts, newer).
pub(crate) fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() { Ordering::Less } else { Ordering::Greater };
    }
    let by_phase = phase_rank(a).cmp(&phase_rank(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    if is_ready(a) != is_ready(b) {
        return if is_ready(a) { Ordering::Greater } else { Ordering::Less };
    }
    if let (Some(ra), Some(rb)) = (ready_since(a), ready_since(b))
        && ra != rb
    {
        return rb.cmp(&ra);
    }
    let restarts = max_restarts(b).cmp(&max_restarts(a));
    if restarts != Ordering::Equal {
        return restarts;
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(b).cmp(&created(a))
}

/// A new pod for `job` (and completion index `index` for Indexed Jobs): the template with the tracking
/// finalizer, and for an index its annotation, label, hostname `<job>-<index>` and the
/// `JOB_COMPLETION_INDEX` variable in every container.
pub(crate) fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let mut template: PodTemplateSpec = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let name = job.name_any();
    let mut prefix = format!("{name}-");
    if let Some(ix) = index {
        add_index_env(&mut template);
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.annotations.get_or_insert_with(Default::default).insert(INDEX_KEY.into(), ix.to_string());
        meta.labels.get_or_insert_with(Default::default).insert(INDEX_KEY.into(), ix.to_string());
        if let Some(spec) = template.spec.as_mut() {
            spec.hostname = Some(format!("{name}-{ix}"));
        }
        prefix = format!("{name}-{ix}-");
    }
    if prefix.len() > MAX_GENERATED_PREFIX {
        prefix.truncate(MAX_GENERATED_PREFIX);
    }
    let meta = template.metadata.get_or_insert_with(Default::default);
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    pod_from_template(&template, job, &prefix)
}

fn add_index_env(template: &mut PodTemplateSpec) {
    let Some(spec) = template.spec.as_mut() else { return };
    let inits = spec.init_containers.iter_mut().flatten();
    for c in inits.chain(spec.containers.iter_mut()) {
        let env = c.env.get_or_insert_with(Vec::new);
        if env.iter().any(|e| e.name == INDEX_ENV) {
            continue;
        }
        env.push(EnvVar {
            name: INDEX_ENV.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.labels['{INDEX_KEY}']"),
                }),
                ..EnvVarSource::default()
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_owned(), "pi".to_owned())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "c".into(), ..Default::default() }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let pod = new_pod(&job(), Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(completion_index(&pod), Some(2));
        assert_eq!(pod.labels().get(INDEX_KEY).map(String::as_str), Some("2"));
        assert_eq!(pod.labels().get("app").map(String::as_str), Some("pi"));
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        let env = spec.containers[0].env.as_ref().expect("env");
        let path = env[0].value_from.as_ref().and_then(|v| v.field_ref.as_ref()).map(|f| f.field_path.as_str());
        assert_eq!(
            (env[0].name.as_str(), path),
            ("JOB_COMPLETION_INDEX", Some("metadata.labels['batch.kubernetes.io/job-completion-index']"))
        );
        assert!(has_tracking_finalizer(&pod));
        let plain = new_pod(&job(), None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("pi-"));
        assert!(plain.spec.as_ref().is_some_and(|s| s.hostname.is_none()));
        assert_eq!(completion_index(&plain), None);
    }

    #[test]
    fn failure_and_finish_time() {
        let j = job();
        let mut pod = new_pod(&j, None);
        pod.metadata.creation_timestamp = Some(Time(Timestamp::from_second(100).expect("ts")));
        assert!(!is_failed(&pod, &j));
        pod.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(200).expect("ts")));
        pod.metadata.deletion_grace_period_seconds = Some(30);
        assert!(is_failed(&pod, &j), "deleted before finishing counts as failed");
        assert!(is_terminating(&pod));
        assert_eq!(finished_time(&pod).as_second(), 170);
        pod.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        assert!(!is_failed(&pod, &j));
        assert!(!is_terminating(&pod));
    }
}
