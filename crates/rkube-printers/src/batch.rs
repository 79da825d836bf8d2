//! Jobs (STATUS, COMPLETIONS `1/3`, DURATION) and cron jobs (SCHEDULE, TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE).

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::age::{human_duration, parse_time, seconds_between, translate_timestamp_since};
use crate::column;
use crate::descriptions::{CJ_ACTIVE, CJ_LAST, CJ_SCHEDULE, CJ_SUSPEND, CJ_TZ, JOB_SELECTOR, JOB_SUCCEEDED};
use crate::format::{bool_word, containers, label_selector};
use crate::value::{age, arr_at, bool_at, condition_true, deleting, int_at, name, opt_int, opt_str, str_at};

/// `jobs`.
pub(crate) const JOBS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::string("Status", "Status of the job."),
            column::string("Completions", JOB_SUCCEEDED),
            column::string("Duration", "Time required to complete the job."),
            column::age(),
            c,
            i,
            column::wide("Selector", JOB_SELECTOR),
        ]
    },
    cells: job_cells,
};

fn job_cells(o: &Value, now: SystemTime) -> Vec<Value> {
    let succeeded = int_at(o, "/status/succeeded");
    let completions = match opt_int(o, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(o, "/spec/parallelism").unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            // Defaulting sets completions and parallelism to 1 when both are missing: `0/1` either way.
            _ => format!("{succeeded}/1"),
        },
    };
    let start = opt_str(o, "/status/startTime").and_then(parse_time);
    let end = opt_str(o, "/status/completionTime").and_then(parse_time);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(seconds_between(s, now)),
        (Some(s), Some(e)) => human_duration(seconds_between(s, e)),
    };
    let conditions = "/status/conditions";
    let status = if condition_true(o, conditions, "Complete") {
        "Complete"
    } else if condition_true(o, conditions, "Failed") {
        "Failed"
    } else if deleting(o) {
        "Terminating"
    } else if condition_true(o, conditions, "Suspended") {
        "Suspended"
    } else if condition_true(o, conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(arr_at(o, "/spec/template/spec/containers"));
    vec![
        name(o),
        json!(status),
        json!(completions),
        json!(duration),
        age(o, now),
        json!(names),
        json!(images),
        json!(label_selector(o.pointer("/spec/selector"))),
    ]
}

/// `cronjobs`.
pub(crate) const CRON_JOBS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::string("Schedule", CJ_SCHEDULE),
            column::string("Timezone", CJ_TZ),
            column::boolean("Suspend", CJ_SUSPEND),
            column::integer("Active", CJ_ACTIVE),
            column::string("Last Schedule", CJ_LAST),
            column::age(),
            c,
            i,
            column::wide("Selector", JOB_SELECTOR),
        ]
    },
    cells: |o, now| {
        let last = match opt_str(o, "/status/lastScheduleTime") {
            Some(t) => translate_timestamp_since(Some(t), now),
            None => "<none>".to_owned(),
        };
        let template = "/spec/jobTemplate/spec";
        let (names, images) = containers(arr_at(o, &format!("{template}/template/spec/containers")));
        vec![
            name(o),
            json!(str_at(o, "/spec/schedule")),
            json!(opt_str(o, "/spec/timeZone").unwrap_or("<none>")),
            // A string despite the boolean column type, as upstream prints it; suspend defaults to false.
            json!(bool_word(bool_at(o, "/spec/suspend"))),
            json!(arr_at(o, "/status/active").len()),
            json!(last),
            age(o, now),
            json!(names),
            json!(images),
            json!(label_selector(o.pointer(&format!("{template}/selector")))),
        ]
    },
};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn jobs() {
        let now = at("2024-01-01T00:00:00Z");
        let done = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(now, 300)},
            "spec": {"completions": 3, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 3, "startTime": ago(now, 290), "completionTime": ago(now, 190),
                       "conditions": [{"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            crate::cells("batch", "jobs", &done, now),
            vec![
                json!("pi"),
                json!("Complete"),
                json!("3/3"),
                json!("100s"),
                json!("5m"),
                json!("pi"),
                json!("perl"),
                json!("batch.kubernetes.io/controller-uid=u1"),
            ]
        );
        let running = json!({"metadata": {"name": "q"}, "spec": {"parallelism": 4}, "status": {"succeeded": 1, "startTime": ago(now, 30)}});
        let cells = crate::cells("batch", "jobs", &running, now);
        assert_eq!(cells[1..4], [json!("Running"), json!("1/1 of 4"), json!("30s")]);
        let fresh = json!({"metadata": {"name": "f", "deletionTimestamp": ago(now, 1)}, "spec": {},
                           "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        let cells = crate::cells("batch", "jobs", &fresh, now);
        assert_eq!(cells[1..4], [json!("Terminating"), json!("0/1"), json!("")]);
    }

    #[test]
    fn cronjob() {
        let now = at("2024-01-01T00:00:00Z");
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": ago(now, 3 * 86400)},
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(now, 45)}
        });
        assert_eq!(
            crate::cells("batch", "cronjobs", &cj, now),
            vec![
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("45s"),
                json!("3d"),
                json!("hello"),
                json!("busybox"),
                json!("<none>"),
            ]
        );
        let never =
            json!({"metadata": {"name": "n"}, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC", "suspend": true}});
        let cells = crate::cells("batch", "cronjobs", &never, now);
        assert_eq!(cells[2..6], [json!("Etc/UTC"), json!("True"), json!(0), json!("<none>")]);
    }
}
