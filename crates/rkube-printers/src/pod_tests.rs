//! Pod rows against hand-written pods in the states kubectl users see most.

use serde_json::{Value, json};

use crate::tests_support::{ago, at};

fn row(pod: &Value) -> Vec<Value> {
    crate::cells("", "pods", pod, at("2024-01-01T12:00:00Z"))
}

/// READY, STATUS, RESTARTS.
fn summary(pod: &Value) -> (Value, Value, Value) {
    let r = row(pod);
    (r[1].clone(), r[2].clone(), r[3].clone())
}

fn two_containers(statuses: Value) -> Value {
    let now = at("2024-01-01T12:00:00Z");
    json!({
        "metadata": {"name": "web", "creationTimestamp": ago(now, 3 * 3600 + 120)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app"}, {"name": "sidecar"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}], "containerStatuses": statuses}
    })
}

#[test]
fn crash_loop_back_off() {
    let now = at("2024-01-01T12:00:00Z");
    let pod = two_containers(json!([
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(now, 3600)}}},
        {"name": "sidecar", "ready": false, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(now, 300)}}}
    ]));
    assert_eq!(
        row(&pod),
        vec![
            json!("web"),
            json!("1/2"),
            json!("CrashLoopBackOff"),
            json!("3 (5m ago)"),
            json!("3h2m"),
            json!("10.244.1.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn running_and_creating() {
    let now = at("2024-01-01T12:00:00Z");
    let running = two_containers(json!([
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(now, 60)}}},
        {"name": "sidecar", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(now, 60)}}}
    ]));
    assert_eq!(summary(&running), (json!("2/2"), json!("Running"), json!("0")));
    let creating = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Pending", "containerStatuses": [
            {"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
    });
    assert_eq!(summary(&creating), (json!("0/1"), json!("ContainerCreating"), json!("0")));
    let unscheduled =
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Pending"}});
    assert_eq!(
        row(&unscheduled)[1..],
        [
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("<unknown>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn completed_terminating_and_errors() {
    let now = at("2024-01-01T12:00:00Z");
    let succeeded = json!({
        "metadata": {"name": "job-x"},
        "spec": {"containers": [{"name": "main"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    });
    assert_eq!(summary(&succeeded), (json!("0/1"), json!("Completed"), json!("0")));
    // Deleting a succeeded pod does not make it Terminating.
    let mut deleted = succeeded.clone();
    deleted["metadata"]["deletionTimestamp"] = json!(ago(now, 1));
    assert_eq!(summary(&deleted).1, json!("Completed"));

    let mut terminating = two_containers(json!([
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "sidecar", "ready": true, "restartCount": 0, "state": {"running": {}}}
    ]));
    terminating["metadata"]["deletionTimestamp"] = json!(ago(now, 5));
    assert_eq!(summary(&terminating), (json!("2/2"), json!("Terminating"), json!("0")));
    terminating["status"]["reason"] = json!("NodeLost");
    assert_eq!(summary(&terminating).1, json!("Unknown"));

    let killed = json!({
        "metadata": {"name": "k"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Failed", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}
    });
    assert_eq!(summary(&killed).1, json!("Signal:9"));
    let evicted = json!({"metadata": {"name": "e"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "reason": "Evicted"}});
    assert_eq!(summary(&evicted).1, json!("Evicted"));

    // One container done, the other still running: Running (or NotReady without the Ready condition).
    let mut partly = two_containers(json!([
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "sidecar", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ]));
    assert_eq!(summary(&partly).1, json!("NotReady"));
    partly["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(summary(&partly).1, json!("Running"));
}

#[test]
fn init_containers() {
    let now = at("2024-01-01T12:00:00Z");
    let pod = |init_statuses: Value| {
        json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": init_statuses,
                       "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}
        })
    };
    let first_running = pod(json!([
        {"name": "i1", "ready": false, "restartCount": 0, "state": {"running": {}}},
        {"name": "i2", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    ]));
    assert_eq!(summary(&first_running), (json!("0/1"), json!("Init:0/2"), json!("0")));
    let second_crashing = pod(json!([
        {"name": "i1", "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "i2", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(now, 30)}}}
    ]));
    assert_eq!(summary(&second_crashing), (json!("0/1"), json!("Init:CrashLoopBackOff"), json!("4 (30s ago)")));
    let failed =
        pod(json!([{"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]));
    assert_eq!(summary(&failed).1, json!("Init:ExitCode:2"));
}

#[test]
fn sidecars_count_as_containers() {
    let now = at("2024-01-01T12:00:00Z");
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                                       "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(now, 7200)}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]
        }
    });
    assert_eq!(summary(&pod), (json!("2/2"), json!("Running"), json!("1 (120m ago)")));
}

#[test]
fn wide_columns() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [], "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "x"}]},
        "status": {"podIP": "10.0.0.9", "nominatedNodeName": "n2",
                   "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "x", "status": "False"}]}
    });
    assert_eq!(row(&pod)[5..], [json!("10.0.0.9"), json!("n1"), json!("n2"), json!("1/2")]);
}

#[test]
fn scheduling_gated() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a"}], "schedulingGates": [{"name": "g"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
    });
    assert_eq!(summary(&pod).1, json!("SchedulingGated"));
}
