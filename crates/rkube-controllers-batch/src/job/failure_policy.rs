//! `spec.podFailurePolicy` (upstream's `matchPodFailurePolicy`): the first rule matching a failed pod's
//! container exit codes or pod conditions decides whether the failure fails the whole Job (`FailJob`),
//! is not counted against the backoff limit (`Ignore`) or counts as usual (`Count`, `FailIndex`).

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

/// What the policy says about one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The Job fails with this message (`FailJob`).
    pub(crate) fail_job: Option<String>,
    /// The failure counts against the backoff limit (not `Ignore`).
    pub(crate) count: bool,
}

const COUNTED: Verdict = Verdict { fail_job: None, count: true };

fn policy(job: &Job) -> Option<&PodFailurePolicy> {
    job.spec.as_ref()?.pod_failure_policy.as_ref()
}

fn exit_code_matches(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    let listed = req.values.contains(&code);
    match req.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        _ => false,
    }
}

fn matching_container<'a>(pod: &'a Pod, req: &PodFailurePolicyOnExitCodesRequirement) -> Option<&'a ContainerStatus> {
    let st = pod.status.as_ref()?;
    let all = st.init_container_statuses.iter().flatten().chain(st.container_statuses.iter().flatten());
    all.into_iter().find(|c| {
        let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref()) else { return false };
        req.container_name.as_ref().is_none_or(|n| *n == c.name)
            && t.exit_code != 0
            && exit_code_matches(t.exit_code, req)
    })
}

fn matching_condition<'a>(
    pod: &'a Pod,
    patterns: &[k8s_openapi::api::batch::v1::PodFailurePolicyOnPodConditionsPattern],
) -> Option<&'a PodCondition> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status == c.status))
}

/// The verdict on a failed pod (counted as usual when the Job has no policy or no rule matches).
pub(crate) fn judge(job: &Job, pod: &Pod) -> Verdict {
    let Some(policy) = policy(job) else { return COUNTED };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let what = if let Some(req) = &rule.on_exit_codes {
            matching_container(pod, req).map(|c| {
                let code = c.state.as_ref().and_then(|s| s.terminated.as_ref()).map_or(0, |t| t.exit_code);
                format!(
                    "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                    c.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            matching_condition(pod, patterns).map(|c| {
                format!("Pod {ns}/{name} has condition {} matching {} rule at index {index}", c.type_, rule.action)
            })
        } else {
            None
        };
        let Some(message) = what else { continue };
        return match rule.action.as_str() {
            "Ignore" => Verdict { fail_job: None, count: false },
            "FailJob" => Verdict { fail_job: Some(message), count: true },
            _ => COUNTED,
        };
    }
    COUNTED
}

/// Upstream's `getFailJobMessage`: the message of the first failed pod whose matching rule is `FailJob`.
pub(crate) fn fail_job_message(job: &Job, pods: &[&Pod]) -> Option<String> {
    policy(job)?;
    pods.iter().filter(|p| super::pods::is_failed(p, job)).find_map(|p| judge(job, p).fail_job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn job(rules: Vec<PodFailurePolicyRule>) -> Job {
        Job {
            spec: Some(JobSpec { pod_failure_policy: Some(PodFailurePolicy { rules }), ..Default::default() }),
            ..Default::default()
        }
    }

    fn exit_rule(action: &str, op: &str, values: Vec<i32>) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: op.into(),
                values,
            }),
            on_pod_conditions: None,
        }
    }

    fn failed_pod(code: i32, condition: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), ..Default::default() },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                conditions: condition
                    .map(|t| vec![PodCondition { type_: t.into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let j = job(vec![exit_rule("FailJob", "In", vec![42]), exit_rule("Ignore", "NotIn", vec![42, 1])]);
        let v = judge(&j, &failed_pod(42, None));
        assert_eq!(
            v.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0")
        );
        assert_eq!(judge(&j, &failed_pod(3, None)), Verdict { fail_job: None, count: false });
        assert_eq!(judge(&j, &failed_pod(1, None)), COUNTED);
        let p = failed_pod(42, None);
        assert!(fail_job_message(&j, &[&p]).is_some());
        assert_eq!(judge(&Job::default(), &p), COUNTED);
    }

    #[test]
    fn pod_conditions_match_too() {
        let j = job(vec![PodFailurePolicyRule {
            action: "Ignore".into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
            }]),
        }]);
        assert!(!judge(&j, &failed_pod(1, Some("DisruptionTarget"))).count);
        assert!(judge(&j, &failed_pod(1, None)).count);
    }
}
