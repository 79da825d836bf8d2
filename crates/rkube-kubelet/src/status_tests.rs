//! Tests of status generation: phases, conditions and container states as upstream writes them.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::actions::tests::{inst, pod, sandbox};
use crate::runtime_state::{CState, PodRuntime};

fn rt(containers: Vec<crate::runtime_state::ContainerInfo>) -> PodRuntime {
    let mut r = PodRuntime { sandboxes: vec![sandbox("s", 0, true)], containers };
    r.sort();
    r
}

fn scheduled(mut p: Pod) -> Pod {
    p.status = Some(
        serde_json::from_value(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
        ]}))
        .unwrap(),
    );
    p
}

fn run(p: &Pod, r: &PodRuntime, reasons: &[(&str, &str, &str)], probes: &HashMap<String, Verdicts>) -> PodStatus {
    let reasons: HashMap<String, (String, String)> =
        reasons.iter().map(|(n, r, m)| (n.to_string(), (r.to_string(), m.to_string()))).collect();
    pod_status(&StatusInput {
        pod: p,
        rt: r,
        reasons: &reasons,
        probes,
        node_ip: "192.168.1.2",
        qos: "BestEffort",
        terminal: false,
        now: Timestamp::from_second(1_800_000_000).unwrap(),
    })
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap()
}

fn cs<'a>(s: &'a PodStatus, name: &str) -> &'a ContainerStatus {
    s.container_statuses.as_ref().unwrap().iter().find(|c| c.name == name).unwrap()
}

fn one() -> serde_json::Value {
    json!({"containers": [{"name": "a", "image": "busybox"}]})
}

#[test]
fn a_new_pod_is_pending_with_container_creating() {
    let p = scheduled(pod(one()));
    let s = run(&p, &PodRuntime::default(), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let a = cs(&s, "a");
    assert_eq!(a.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("ContainerCreating"));
    assert_eq!((a.ready, a.started, a.image.as_str()), (false, Some(false), "busybox"));
    let types: Vec<&str> = s.conditions.as_ref().unwrap().iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    assert_eq!(cond(&s, "Initialized").status, "True");
    let ready = cond(&s, "Ready");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [a]"));
    // The scheduler's condition keeps its transition time.
    assert_eq!(
        serde_json::to_value(&cond(&s, "PodScheduled").last_transition_time).unwrap(),
        json!("2024-01-01T00:00:00Z")
    );
    assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    assert!(s.start_time.is_some());
}

#[test]
fn a_running_pod_is_ready() {
    let p = scheduled(pod(one()));
    let mut c = inst("abc", "a", CState::Running, 0, 5);
    c.started_at = 1_700_000_000_000_000_000;
    c.image = "docker.io/library/busybox:latest".into();
    c.image_ref = "sha256:1234".into();
    let s = run(&p, &rt(vec![c]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(serde_json::to_value(&s.pod_ips).unwrap(), json!([{"ip": "10.0.0.5"}]));
    for t in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"] {
        assert_eq!(cond(&s, t).status, "True", "{t}");
    }
    let v = serde_json::to_value(cs(&s, "a")).unwrap();
    assert_eq!(
        v,
        json!({"name": "a", "image": "docker.io/library/busybox:latest", "imageID": "sha256:1234",
               "containerID": "containerd://abc", "ready": true, "started": true, "restartCount": 0,
               "state": {"running": {"startedAt": "2023-11-14T22:13:20Z"}}, "lastState": {}})
    );
}

#[test]
fn crash_loop_shows_waiting_with_the_last_termination() {
    let p = scheduled(pod(one()));
    let mut c = inst("c2", "a", CState::Exited, 3, 5);
    c.reason = "Error".into();
    c.restart_count = 2;
    c.finished_at = 1_700_000_000_000_000_000;
    let msg = "back-off 20s restarting failed container=a pod=p_ns(u1)";
    let s = run(&p, &rt(vec![c]), &[("a", "CrashLoopBackOff", msg)], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let a = cs(&s, "a");
    let w = a.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!((w.reason.as_deref(), w.message.as_deref()), (Some("CrashLoopBackOff"), Some(msg)));
    let t = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    assert_eq!(t.container_id.as_deref(), Some("containerd://c2"));
    assert_eq!(a.restart_count, 2);
    assert!(!a.ready);
}

#[test]
fn never_restarting_failure_is_failed_and_success_is_succeeded() {
    let mut spec = one();
    spec["restartPolicy"] = json!("Never");
    let p = scheduled(pod(spec));
    let mut c = inst("c1", "a", CState::Exited, 3, 5);
    c.reason = "Error".into();
    let s = run(&p, &rt(vec![c]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let t = cs(&s, "a").state.as_ref().unwrap().terminated.clone().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodFailed"));

    let mut ok = inst("c1", "a", CState::Exited, 0, 5);
    ok.reason = "Completed".into();
    let s = run(&p, &rt(vec![ok]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    assert_eq!(cond(&s, "Initialized").reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn readiness_and_startup_verdicts_set_ready_and_started() {
    let spec = json!({"containers": [{"name": "a", "readinessProbe": {"exec": {"command": ["true"]}},
                                       "startupProbe": {"exec": {"command": ["true"]}}}]});
    let p = scheduled(pod(spec));
    let r = rt(vec![inst("c1", "a", CState::Running, 0, 5)]);
    let s = run(&p, &r, &[], &HashMap::new());
    assert_eq!((cs(&s, "a").started, cs(&s, "a").ready), (Some(false), false));
    let mut v = HashMap::from([("c1".to_owned(), Verdicts { started: Some(true), ..Verdicts::default() })]);
    let s = run(&p, &r, &[], &v);
    assert_eq!((cs(&s, "a").started, cs(&s, "a").ready), (Some(true), false));
    v.get_mut("c1").unwrap().ready = Some(true);
    let s = run(&p, &r, &[], &v);
    assert!(cs(&s, "a").ready);
    assert_eq!(cond(&s, "Ready").status, "True");
}

#[test]
fn init_containers_gate_initialized() {
    let spec = json!({"initContainers": [{"name": "i1", "image": "x"}], "containers": [{"name": "a", "image": "x"}]});
    let p = scheduled(pod(spec));
    let s = run(&p, &rt(vec![inst("i", "i1", CState::Running, 0, 1)]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = cond(&s, "Initialized");
    assert_eq!((init.status.as_str(), init.reason.as_deref()), ("False", Some("ContainersNotInitialized")));
    assert_eq!(init.message.as_deref(), Some("containers with incomplete status: [i1]"));
    assert_eq!(
        cs(&s, "a").state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
        Some("PodInitializing")
    );
    let mut done = inst("i", "i1", CState::Exited, 0, 1);
    done.reason = "Completed".into();
    let s = run(&p, &rt(vec![done, inst("c", "a", CState::Running, 0, 2)]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&s, "Initialized").status, "True");
    let i = &s.init_container_statuses.as_ref().unwrap()[0];
    assert!(i.ready);
    assert_eq!(i.state.as_ref().unwrap().terminated.as_ref().unwrap().reason.as_deref(), Some("Completed"));
}

#[test]
fn image_errors_show_as_waiting_reasons() {
    let p = scheduled(pod(one()));
    let msg = "Container image \"busybox\" is not present with pull policy of Never";
    let s = run(&p, &rt(vec![]), &[("a", "ErrImageNeverPull", msg)], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let w = cs(&s, "a").state.clone().unwrap().waiting.unwrap();
    assert_eq!((w.reason.as_deref(), w.message.as_deref()), (Some("ErrImageNeverPull"), Some(msg)));
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "True");
}

#[test]
fn a_terminal_phase_is_kept_and_terminal_pods_settle() {
    let mut p = scheduled(pod(one()));
    p.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let s = run(&p, &rt(vec![inst("c", "a", CState::Running, 0, 1)]), &[], &HashMap::new());
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    // Being deleted: exited containers decide between Succeeded and Failed whatever the policy.
    let regular = vec![ContainerStatus {
        name: "a".into(),
        state: Some(k8s_openapi::api::core::v1::ContainerState {
            terminated: Some(k8s_openapi::api::core::v1::ContainerStateTerminated {
                exit_code: 137,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let live = pod(one());
    assert_eq!(phase(&live, &[], &regular, false), "Running");
    assert_eq!(phase(&live, &[], &regular, true), "Failed");
}
