//! Pods: READY `1/2`, the STATUS reason (`CrashLoopBackOff`, `Init:0/1`, `Completed`, ...), RESTARTS.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::age::{human_duration, parse_time, seconds_between};
use crate::column::{self, Column};
use crate::descriptions::{POD_GATES, POD_IP, POD_NODE, POD_NOMINATED};
use crate::value::{arr_at, bool_at, deleting, int_at, name, opt_str, str_at};

/// `pods`.
pub(crate) const PODS: Printer = Printer { columns, cells };

fn columns() -> Vec<Column> {
    vec![
        column::name(),
        column::string("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        column::string("Status", "The aggregate status of the containers in this pod."),
        column::string(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        column::age(),
        column::wide("IP", POD_IP),
        column::wide("Node", POD_NODE),
        column::wide("Nominated Node", POD_NOMINATED),
        column::wide("Readiness Gates", POD_GATES),
    ]
}

/// Restart counts and the latest restart time of a set of container statuses.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<SystemTime>,
}

impl Restarts {
    /// Adds one container status: its restart count, and when its previous run ended.
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, "/restartCount");
        if let Some(t) = opt_str(status, "/lastState/terminated/finishedAt").and_then(parse_time)
            && self.last.is_none_or(|last| last < t)
        {
            self.last = Some(t);
        }
    }
}

/// An init container that keeps running beside the app containers (a sidecar): `restartPolicy: Always`.
fn is_sidecar(pod: &Value, container: &str) -> bool {
    arr_at(pod, "/spec/initContainers")
        .iter()
        .any(|c| str_at(c, "/name") == container && str_at(c, "/restartPolicy") == "Always")
}

/// The reason a terminated container shows when it gave none: `Signal:9` or `ExitCode:1`.
fn exit_reason(terminated: &Value) -> String {
    let signal = int_at(terminated, "/signal");
    if signal != 0 { format!("Signal:{signal}") } else { format!("ExitCode:{}", int_at(terminated, "/exitCode")) }
}

/// Whether the pod's condition of `type_` is `True`.
fn pod_condition(pod: &Value, type_: &str) -> bool {
    arr_at(pod, "/status/conditions").iter().any(|c| str_at(c, "/type") == type_ && str_at(c, "/status") == "True")
}

/// READY, STATUS and RESTARTS of a pod, worked out as upstream's `printPod` does.
fn summary(pod: &Value, now: SystemTime) -> (String, String, String) {
    let phase = str_at(pod, "/status/phase");
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    let gated = arr_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_owned();
    }

    let init_specs = arr_at(pod, "/spec/initContainers");
    let sidecars = init_specs.iter().filter(|c| str_at(c, "/restartPolicy") == "Always").count();
    let total = arr_at(pod, "/spec/containers").len() + sidecars;
    let mut ready = 0usize;
    let mut all = Restarts::default();
    let mut sidecar_restarts = Restarts::default();

    // Init containers run in order: the first one not done yet decides the status.
    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses").iter().enumerate() {
        let sidecar = is_sidecar(pod, str_at(status, "/name"));
        all.add(status);
        if sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = status.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && bool_at(status, "/started") {
            if bool_at(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, "/reason") {
                "" => format!("Init:{}", exit_reason(t)),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let mut restarts = all;
    if !initializing || pod_condition(pod, "Initialized") {
        // Once initialized, only sidecar restarts still count among the init containers'.
        restarts = sidecar_restarts;
        let mut has_running = false;
        // Upstream walks the statuses backwards, so the first container's reason wins.
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts.add(status);
            let waiting_reason = str_at(status, "/state/waiting/reason");
            let terminated = status.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if let Some(t) = terminated {
                reason = match str_at(t, "/reason") {
                    "" => exit_reason(t),
                    r => r.to_owned(),
                };
            } else if bool_at(status, "/ready") && status.pointer("/state/running").is_some_and(Value::is_object) {
                has_running = true;
                ready += 1;
            }
        }
        // A container that completed while another still runs does not make the pod "Completed".
        if reason == "Completed" && has_running {
            reason = if pod_condition(pod, "Ready") { "Running" } else { "NotReady" }.to_owned();
        }
    }

    if deleting(pod) && str_at(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => {
            format!("{} ({} ago)", restarts.count, human_duration(seconds_between(last, now)))
        }
        _ => restarts.count.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_cell)
}

/// `<none>` for an empty string.
fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s.to_owned() }
}

fn cells(pod: &Value, now: SystemTime) -> Vec<Value> {
    let (ready, status, restarts) = summary(pod, now);
    // Upstream reads podIPs (the v1 conversion fills it from podIP when only that is set).
    let ip = arr_at(pod, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| str_at(pod, "/status/podIP"));
    let gates = arr_at(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let conditions = arr_at(pod, "/status/conditions");
        let ok = gates
            .iter()
            .filter(|g| {
                let wanted = str_at(g, "/conditionType");
                conditions.iter().find(|c| str_at(c, "/type") == wanted).is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(ready),
        json!(status),
        json!(restarts),
        crate::value::age(pod, now),
        json!(or_none(ip)),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(gates_cell),
    ]
}

/// The row conditions upstream attaches to finished pods (kubectl uses them to tell completed rows apart).
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{ "type": "Completed", "status": "True", "reason": reason, "message": message }]))
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
