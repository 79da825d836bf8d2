//! Unit tests of the pod status a kubelet would write.

use super::*;
use serde_json::json;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

fn with_resources(resources: &[serde_json::Value]) -> PodSpec {
    let containers: Vec<_> =
        resources.iter().enumerate().map(|(i, r)| json!({"name": format!("c{i}"), "resources": r})).collect();
    serde_json::from_value(json!({ "containers": containers })).unwrap()
}

#[test]
fn qos_classes_as_upstream() {
    assert_eq!(qos_class(&with_resources(&[json!({})])), "BestEffort");
    assert_eq!(qos_class(&with_resources(&[json!({"requests": {"cpu": "0"}})])), "BestEffort");
    assert_eq!(qos_class(&with_resources(&[json!({"requests": {"cpu": "100m"}})])), "Burstable");
    let full = json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}});
    assert_eq!(qos_class(&with_resources(std::slice::from_ref(&full))), "Guaranteed");
    assert_eq!(qos_class(&with_resources(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}})])), "Guaranteed");
    assert_eq!(qos_class(&with_resources(&[full.clone(), json!({})])), "Burstable", "one container without limits");
    let cpu_only = json!({"requests": {"cpu": "1"}, "limits": {"cpu": "1"}});
    assert_eq!(qos_class(&with_resources(&[cpu_only])), "Burstable", "memory limit missing");
    let unequal = json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}});
    assert_eq!(qos_class(&with_resources(&[unequal])), "Burstable");
    let other = json!({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}});
    assert_eq!(qos_class(&with_resources(&[other])), "BestEffort", "only cpu and memory count");
}

fn web() -> Pod {
    pod(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                     "annotations": {"sim.rkube.io/run-seconds": "2.5"}},
        "spec": {"nodeName": "sim-1", "restartPolicy": "Never",
                 "initContainers": [{"name": "setup", "image": "busybox"}],
                 "containers": [{"name": "app", "image": "nginx:1.25"}, {"name": "side", "image": "envoy"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort",
                   "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "1970-01-01T00:01:40Z"},
                                  {"type": "DisruptionTarget", "status": "False"}]}
    }))
}

fn types(s: &PodStatus) -> Vec<(String, String)> {
    s.conditions.iter().flatten().map(|c| (c.type_.clone(), c.status.clone())).collect()
}

#[test]
fn running_status_as_a_kubelet_writes_it() {
    let p = web();
    let s = running(&p, "10.200.0.2", &["10.244.1.2".into()], ts(1000));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!((s.host_ip.as_deref(), s.pod_ip.as_deref()), (Some("10.200.0.2"), Some("10.244.1.2")));
    assert_eq!(s.host_ips.as_ref().unwrap()[0].ip, "10.200.0.2");
    assert_eq!(s.pod_ips.as_ref().unwrap()[0].ip, "10.244.1.2");
    assert_eq!(s.start_time, Some(Time(ts(1000))));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    let t = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        types(&s),
        [
            t("DisruptionTarget", "False"),
            t("PodReadyToStartContainers", "True"),
            t("Initialized", "True"),
            t("Ready", "True"),
            t("ContainersReady", "True"),
            t("PodScheduled", "True"),
        ]
    );
    let scheduled = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!(scheduled.last_transition_time, Some(Time(ts(100))), "the scheduler's condition is kept");
    let cs = s.container_statuses.as_ref().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!((cs[0].name.as_str(), cs[0].image.as_str(), cs[0].ready), ("app", "nginx:1.25", true));
    assert_eq!(cs[0].started, Some(true));
    assert_eq!(cs[0].restart_count, 0);
    assert!(cs[0].container_id.as_deref().unwrap().starts_with("sim://"));
    assert_eq!(cs[0].container_id.as_deref().unwrap().len(), "sim://".len() + 64);
    assert_ne!(cs[0].container_id, cs[1].container_id);
    assert_eq!(cs[0].state.as_ref().unwrap().running.as_ref().unwrap().started_at, Some(Time(ts(1000))));
    let init = &s.init_container_statuses.as_ref().unwrap()[0];
    let term = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref(), init.ready), (0, Some("Completed"), true));

    // Recomputing later for the pod as written gives the same status: nothing to write.
    let mut written = p.clone();
    written.status = Some(s.clone());
    assert_eq!(running(&written, "10.200.0.2", &["10.244.1.2".into()], ts(2000)), s);
    assert_eq!(finish_time(&written), Some(Timestamp::from_millisecond(1_002_500).unwrap()));
}

#[test]
fn finished_statuses() {
    let mut p = web();
    p.status = Some(running(&p, "10.200.0.2", &["10.244.1.2".into()], ts(1000)));
    let s = finished(&p, ts(1003));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.2"));
    let c = |t: &str| s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap().clone();
    assert_eq!((c("Ready").status.as_str(), c("Ready").reason.as_deref()), ("False", Some("PodCompleted")));
    assert_eq!(c("ContainersReady").reason.as_deref(), Some("PodCompleted"));
    assert_eq!((c("Initialized").status.as_str(), c("Initialized").reason.as_deref()), ("True", Some("PodCompleted")));
    assert_eq!(c("PodReadyToStartContainers").status, "False");
    assert_eq!(c("Ready").last_transition_time, Some(Time(ts(1003))));
    assert_eq!(c("Initialized").last_transition_time, Some(Time(ts(1000))));
    let app = &s.container_statuses.as_ref().unwrap()[0];
    let term = app.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (0, Some("Completed")));
    assert_eq!((term.started_at.clone(), term.finished_at.clone()), (Some(Time(ts(1000))), Some(Time(ts(1003)))));
    assert!(!app.ready);

    p.metadata.annotations.as_mut().unwrap().insert(EXIT_CODE.into(), "3".into());
    let s = finished(&p, ts(1003));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    let ready = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("PodFailed"));
    let term = s.container_statuses.as_ref().unwrap()[1].state.clone().unwrap().terminated.unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (3, Some("Error")));
}

#[test]
fn readiness_gates_hold_ready_back() {
    let mut p = web();
    p.spec.as_mut().unwrap().readiness_gates =
        Some(vec![serde_json::from_value(json!({"conditionType": "example.com/lb"})).unwrap()]);
    let s = running(&p, "h", &[], ts(1));
    let ready = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("ReadinessGatesNotReady")));
    assert!(s.pod_ip.is_none() && s.pod_ips.is_none());
    p.status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .push(serde_json::from_value(json!({"type": "example.com/lb", "status": "True"})).unwrap());
    let s = running(&p, "h", &[], ts(1));
    let ready = s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
}

#[test]
fn annotations() {
    let mut p = web();
    assert_eq!(run_duration(&p), Duration::from_millis(2500));
    assert_eq!(exit_code(&p), 0);
    assert!(runs_to_completion(&p));
    p.metadata.annotations = Some([(RUN_SECONDS.to_owned(), "soon".to_owned())].into());
    assert_eq!(run_duration(&p), Duration::from_secs(1), "unparsable: the default");
    p.spec.as_mut().unwrap().restart_policy = None;
    assert!(!runs_to_completion(&p), "the default policy is Always");
}
