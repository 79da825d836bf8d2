//! The Job, CronJob and TTL-after-finished controllers against a real `rkube server`, real kubectl 1.33
//! and simulated nodes (`rkube sim nodes`, which finish pods that do not restart after about a second,
//! Failed when the pod has `sim.rkube.io/exit-code: "1"`). Waits are polls with deadlines.
//!
//! `cronjob_creates_a_job_at_the_next_minute` is the one slow test (up to ~65 s: it waits for the next
//! whole minute, as a real `*/1 * * * *` schedule does).

mod common;

use std::time::{Duration, Instant};

use common::{Server, Sim, apply, eventually, json};
use serde_json::Value;

const V: &str = "1.33";

/// A server with one simulated node.
fn cluster() -> (Server, Sim) {
    let s = Server::start();
    let sim = Sim::start(&s, &["--count", "1"]);
    (s, sim)
}

/// A Job manifest; `spec` is extra `spec:` lines (indented by 2), `exit` the simulated exit code.
fn job_yaml(name: &str, spec: &str, exit: &str) -> String {
    job_yaml_running(name, spec, exit, "1")
}

/// [`job_yaml`] with pods that run `secs` seconds on the simulated node.
fn job_yaml_running(name: &str, spec: &str, exit: &str, secs: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}
  template:
    metadata:
      annotations:
        sim.rkube.io/exit-code: \"{exit}\"
        sim.rkube.io/run-seconds: \"{secs}\"
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [\"true\"]
"
    )
}

fn pods_of(s: &Server, job: &str) -> Vec<Value> {
    let list = json(s, &["get", "pods", "-l", &format!("batch.kubernetes.io/job-name={job}")]);
    list["items"].as_array().cloned().unwrap_or_default()
}

fn condition<'a>(job: &'a Value, type_: &str) -> Option<&'a Value> {
    job["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn events(s: &Server, name: &str) -> Vec<(String, String)> {
    let list = json(s, &["get", "events", "--field-selector", &format!("involvedObject.name={name}")]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| (e["reason"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn job_runs_its_completions_with_bounded_parallelism() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml("pi", "  completions: 3\n  parallelism: 2", "0"));
    // Sample while it runs: never more than `parallelism` unfinished pods.
    eventually(&s, 60, "the job complete", || {
        let pods = pods_of(&s, "pi");
        let running =
            pods.iter().filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))).count();
        assert!(running <= 2, "{running} unfinished pods with parallelism 2: {pods:?}");
        condition(&json(&s, &["get", "job", "pi"]), "Complete").is_some()
    });
    let out = s.kubectl(V, &["wait", "--for=condition=complete", "job/pi", "--timeout=5s"]);
    assert!(out.status.success(), "job did not complete: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "pi"]);
    assert_eq!(job["status"]["succeeded"], 3, "status: {}", job["status"]);
    assert!(job["status"]["active"].is_null(), "no active pods left: {}", job["status"]);
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
    let met = condition(&job, "SuccessCriteriaMet").expect("SuccessCriteriaMet condition");
    let complete = condition(&job, "Complete").expect("Complete condition");
    for c in [met, complete] {
        assert_eq!(c["reason"], "CompletionsReached");
        assert_eq!(c["message"], "Reached expected number of succeeded pods");
    }
    let uid = job["metadata"]["uid"].as_str().expect("uid").to_owned();
    // Exactly three pods, all succeeded, labelled and owned by the Job, finalizers removed once counted.
    eventually(&s, 10, "tracking finalizers removed", || {
        pods_of(&s, "pi").iter().all(|p| p["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty()))
    });
    let pods = pods_of(&s, "pi");
    assert_eq!(pods.len(), 3, "pods: {pods:?}");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded");
        let labels = &p["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid.as_str());
        assert_eq!(labels["controller-uid"], uid.as_str());
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert!(p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("pi-")));
    }
    let ev = events(&s, "pi");
    let created = ev.iter().filter(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: pi-")).count();
    assert_eq!(created, 3, "events: {ev:?}");
    assert!(ev.iter().any(|(r, m)| r == "Completed" && m == "Job completed"), "events: {ev:?}");
}

#[test]
fn failing_job_stops_at_its_backoff_limit() {
    let (s, _sim) = cluster();
    // Two failures with backoffLimit 1: the second pod comes ~10 s after the first failed (pod backoff).
    apply(&s, &job_yaml("fail", "  backoffLimit: 1", "1"));
    let out = s.kubectl(V, &["wait", "--for=condition=failed", "job/fail", "--timeout=60s"]);
    assert!(out.status.success(), "job did not fail: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "fail"]);
    assert_eq!(job["status"]["failed"], 2, "status: {}", job["status"]);
    for t in ["FailureTarget", "Failed"] {
        let c = condition(&job, t).unwrap_or_else(|| panic!("{t} condition in {}", job["status"]));
        assert_eq!(c["reason"], "BackoffLimitExceeded");
        assert_eq!(c["message"], "Job has reached the specified backoff limit");
    }
    assert!(condition(&job, "Complete").is_none());
    let pods = pods_of(&s, "fail");
    assert_eq!(pods.len(), 2, "exactly two pods ran: {pods:?}");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
    let ev = events(&s, "fail");
    assert!(
        ev.iter().any(|(r, m)| r == "BackoffLimitExceeded" && m == "Job has reached the specified backoff limit"),
        "events: {ev:?}"
    );
}

#[test]
fn job_past_its_active_deadline_fails_and_its_pods_go() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml_running("slow", "  activeDeadlineSeconds: 2\n  parallelism: 2\n  completions: 2", "0", "60"));
    let out = s.kubectl(V, &["wait", "--for=condition=failed", "job/slow", "--timeout=30s"]);
    assert!(out.status.success(), "job did not fail: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "slow"]);
    for t in ["FailureTarget", "Failed"] {
        let c = condition(&job, t).unwrap_or_else(|| panic!("{t} condition in {}", job["status"]));
        assert_eq!(c["reason"], "DeadlineExceeded");
        assert_eq!(c["message"], "Job was active longer than specified deadline");
    }
    assert_eq!(job["status"]["failed"], 2, "the running pods count as failed: {}", job["status"]);
    assert!(job["status"]["active"].is_null() && job["status"]["terminating"] == 0, "status: {}", job["status"]);
    eventually(&s, 20, "the running pods deleted", || pods_of(&s, "slow").is_empty());
    let ev = events(&s, "slow");
    assert!(
        ev.iter().any(|(r, m)| r == "DeadlineExceeded" && m == "Job was active longer than specified deadline"),
        "events: {ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|(r, m)| r == "SuccessfulDelete" && m.starts_with("Deleted pod: slow-")).count(),
        2,
        "events: {ev:?}"
    );
}

#[test]
fn pod_failure_policy_fails_the_job_on_a_matching_exit_code() {
    let (s, _sim) = cluster();
    let policy = "  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes:
        operator: In
        values: [1]";
    apply(&s, &job_yaml("fatal", policy, "1"));
    let out = s.kubectl(V, &["wait", "--for=condition=failed", "job/fatal", "--timeout=30s"]);
    assert!(out.status.success(), "job did not fail: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "fatal"]);
    let pods = pods_of(&s, "fatal");
    assert_eq!(pods.len(), 1, "no retry after a FailJob match: {pods:?}");
    let pod = pods[0]["metadata"]["name"].as_str().expect("name");
    let msg = format!("Container main for pod default/{pod} failed with exit code 1 matching FailJob rule at index 0");
    for t in ["FailureTarget", "Failed"] {
        let c = condition(&job, t).unwrap_or_else(|| panic!("{t} condition in {}", job["status"]));
        assert_eq!((c["reason"].as_str(), c["message"].as_str()), (Some("PodFailurePolicy"), Some(msg.as_str())));
    }
    assert_eq!(job["status"]["failed"], 1);
}

#[test]
fn job_with_a_manual_selector_adopts_a_matching_orphan() {
    let (s, _sim) = cluster();
    apply(
        &s,
        r#"apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels: {app: adopt}
  annotations: {sim.rkube.io/run-seconds: "3"}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox}]
"#,
    );
    eventually(&s, 20, "the orphan pod running", || json(&s, &["get", "pod", "stray"])["status"]["phase"] == "Running");
    apply(
        &s,
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: adopt
spec:
  manualSelector: true
  selector: {matchLabels: {app: adopt}}
  template:
    metadata:
      labels: {app: adopt}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
"#,
    );
    let out = s.kubectl(V, &["wait", "--for=condition=complete", "job/adopt", "--timeout=30s"]);
    assert!(out.status.success(), "job did not complete: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let pod = json(&s, &["get", "pod", "stray"]);
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str(), owner["controller"].as_bool()),
        (Some("Job"), Some("adopt"), Some(true))
    );
    let pods = json(&s, &["get", "pods", "-l", "app=adopt"])["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 1, "the adopted pod ran the Job; none created: {pods:?}");
    assert_eq!(json(&s, &["get", "job", "adopt"])["status"]["succeeded"], 1);
}

#[test]
fn deleting_a_running_job_releases_its_pods() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml_running("gone", "  parallelism: 2\n  completions: 2", "0", "60"));
    eventually(&s, 20, "two pods running", || {
        let pods = pods_of(&s, "gone");
        pods.len() == 2 && pods.iter().all(|p| p["status"]["phase"] == "Running")
    });
    // The pods hold the tracking finalizer; the controller must drop it once the Job is gone.
    s.ok(V, &["delete", "job", "gone", "--wait=false"]);
    eventually(&s, 30, "the job's pods deleted", || pods_of(&s, "gone").is_empty());
}

#[test]
fn indexed_job_gives_each_pod_its_index() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml("idx", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed", "0"));
    let out = s.kubectl(V, &["wait", "--for=condition=complete", "job/idx", "--timeout=60s"]);
    assert!(out.status.success(), "job did not complete: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "idx"]);
    assert_eq!(job["status"]["completedIndexes"], "0-2", "status: {}", job["status"]);
    assert_eq!(job["status"]["succeeded"], 3);
    let mut seen: Vec<String> = Vec::new();
    for p in pods_of(&s, "idx") {
        let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("index")
            .to_owned();
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], ix.as_str());
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}").as_str());
        assert!(p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(&format!("idx-{ix}-"))));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        seen.push(ix);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
}

#[test]
fn epoch_seconds_reads_utc_times() {
    assert_eq!(epoch_seconds("1970-01-01T00:01:00Z"), 60);
    assert_eq!(epoch_seconds("2024-01-11T14:00:00Z"), 1_704_981_600);
}

#[test]
fn negative_completions_are_refused() {
    let s = Server::start();
    let out = s.kubectl_stdin(V, &["create", "-f", "-"], &job_yaml("neg", "  completions: -1", "0"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("The Job \"neg\" is invalid"), "stderr: {err}");
    assert!(err.contains("spec.completions: Invalid value: -1: must be greater than or equal to 0"), "stderr: {err}");
}

#[test]
fn finished_job_is_deleted_after_its_ttl() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml("short", "  ttlSecondsAfterFinished: 2", "0"));
    let out = s.kubectl(V, &["wait", "--for=condition=complete", "job/short", "--timeout=60s"]);
    assert!(out.status.success(), "job did not complete: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let finished = Instant::now();
    eventually(&s, 20, "the job deleted after its TTL", || !s.kubectl(V, &["get", "job", "short"]).status.success());
    assert!(finished.elapsed() >= Duration::from_secs(1), "deleted before its TTL ran out");
    eventually(&s, 20, "its pods deleted too", || pods_of(&s, "short").is_empty());
}

#[test]
fn suspended_job_runs_once_resumed() {
    let (s, _sim) = cluster();
    apply(&s, &job_yaml("later", "  suspend: true", "0"));
    eventually(&s, 10, "the Suspended condition", || {
        condition(&json(&s, &["get", "job", "later"]), "Suspended").is_some_and(|c| c["status"] == "True")
    });
    assert!(pods_of(&s, "later").is_empty(), "no pods while suspended");
    s.ok(V, &["patch", "job", "later", "--type=merge", "-p", r#"{"spec":{"suspend":false}}"#]);
    let out = s.kubectl(V, &["wait", "--for=condition=complete", "job/later", "--timeout=60s"]);
    assert!(out.status.success(), "job did not complete: {}\n{}", String::from_utf8_lossy(&out.stderr), s.log_tail());
    let job = json(&s, &["get", "job", "later"]);
    let c = condition(&job, "Suspended").expect("Suspended condition");
    assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("JobResumed")));
    let ev = events(&s, "later");
    assert!(ev.iter().any(|(r, m)| r == "Suspended" && m == "Job suspended"), "events: {ev:?}");
    assert!(ev.iter().any(|(r, m)| r == "Resumed" && m == "Job resumed"), "events: {ev:?}");
}

/// Seconds since the epoch of a UTC RFC 3339 time `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch_seconds(t: &str) -> i64 {
    assert!(t.len() == 20 && t.ends_with('Z'), "a UTC time: {t}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// SLOW (up to ~65 s): a `*/1 * * * *` CronJob creates its Job at the next whole minute.
#[test]
fn cronjob_creates_a_job_at_the_next_minute() {
    let (s, _sim) = cluster();
    let yaml = "apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: \"*/1 * * * *\"
  jobTemplate:
    metadata:
      labels:
        from: tick
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
";
    apply(&s, yaml);
    let mut jobs = Vec::new();
    eventually(&s, 75, "a job created by the cronjob", || {
        jobs = json(&s, &["get", "jobs", "-l", "from=tick"])["items"].as_array().cloned().unwrap_or_default();
        !jobs.is_empty()
    });
    let job = &jobs[0];
    let name = job["metadata"]["name"].as_str().expect("name").to_owned();
    let scheduled =
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().expect("annotation");
    let t = epoch_seconds(scheduled);
    assert_eq!(t % 60, 0, "scheduled on a whole minute: {scheduled}");
    assert_eq!(name, format!("tick-{}", t / 60));
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    eventually(&s, 30, "the job completed and seen by the cronjob", || {
        let cj = json(&s, &["get", "cronjob", "tick"]);
        cj["status"]["lastSuccessfulTime"].is_string() && cj["status"]["active"].is_null()
    });
    let cj = json(&s, &["get", "cronjob", "tick"]);
    assert_eq!(cj["status"]["lastScheduleTime"].as_str(), Some(scheduled));
    let ev = events(&s, "tick");
    assert!(ev.iter().any(|(r, m)| r == "SuccessfulCreate" && *m == format!("Created job {name}")), "events: {ev:?}");
    assert!(
        ev.iter()
            .any(|(r, m)| r == "SawCompletedJob" && *m == format!("Saw completed job: {name}, condition: Complete")),
        "events: {ev:?}"
    );
}
