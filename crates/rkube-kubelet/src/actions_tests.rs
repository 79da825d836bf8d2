//! Tests of the sync decisions over pod + runtime snapshots.

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::json;

use super::*;
use crate::runtime_state::{CState, ContainerInfo, PodRuntime, SandboxInfo};

pub(crate) fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec})).unwrap()
}

pub(crate) fn sandbox(id: &str, attempt: u32, ready: bool) -> SandboxInfo {
    SandboxInfo { id: id.into(), attempt, ready, created_at: i64::from(attempt) + 1, ips: vec!["10.0.0.5".into()] }
}

pub(crate) fn inst(id: &str, name: &str, state: CState, exit: i32, created: i64) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        name: name.into(),
        state: Some(state),
        exit_code: exit,
        created_at: created,
        hash: "h".into(),
        ..Default::default()
    }
}

fn rt(sandboxes: Vec<SandboxInfo>, containers: Vec<ContainerInfo>) -> PodRuntime {
    let mut r = PodRuntime { sandboxes, containers };
    r.sort();
    r
}

fn hash(_: &Container) -> String {
    "h".into()
}

fn healthy(_: &str) -> Option<&'static str> {
    None
}

fn two() -> serde_json::Value {
    json!({"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]})
}

#[test]
fn a_new_pod_gets_a_sandbox_and_all_containers() {
    let a = compute(&pod(two()), &PodRuntime::default(), &hash, &healthy);
    assert_eq!(a, Actions { kill_pod: true, create_sandbox: Some(0), start: vec![0, 1], ..Actions::default() });
}

#[test]
fn running_containers_are_kept() {
    let r = rt(
        vec![sandbox("s", 0, true)],
        vec![inst("a1", "a", CState::Running, 0, 1), inst("b1", "b", CState::Running, 0, 2)],
    );
    assert_eq!(compute(&pod(two()), &r, &hash, &healthy), Actions::default());
}

#[test]
fn exited_containers_restart_per_policy() {
    let r = rt(
        vec![sandbox("s", 0, true)],
        vec![inst("a1", "a", CState::Exited, 0, 1), inst("b1", "b", CState::Exited, 3, 2)],
    );
    let always = compute(&pod(two()), &r, &hash, &healthy);
    assert_eq!(always.start, vec![0, 1]);
    let mut on_failure = two();
    on_failure["restartPolicy"] = json!("OnFailure");
    assert_eq!(compute(&pod(on_failure), &r, &hash, &healthy).start, vec![1]);
    let mut never = two();
    never["restartPolicy"] = json!("Never");
    let a = compute(&pod(never), &r, &hash, &healthy);
    // Nothing to keep or start: the sandbox is stopped.
    assert_eq!(a, Actions { kill_pod: true, ..Actions::default() });
}

#[test]
fn a_dead_sandbox_is_recreated_unless_the_pod_is_done() {
    let r = rt(
        vec![sandbox("s", 0, false)],
        vec![inst("a1", "a", CState::Exited, 0, 1), inst("b1", "b", CState::Exited, 1, 2)],
    );
    let a = compute(&pod(two()), &r, &hash, &healthy);
    assert_eq!(a, Actions { kill_pod: true, create_sandbox: Some(1), start: vec![0, 1], ..Actions::default() });
    let mut never = two();
    never["restartPolicy"] = json!("Never");
    assert_eq!(compute(&pod(never), &r, &hash, &healthy), Actions { kill_pod: true, ..Actions::default() });
    let mut on_failure = two();
    on_failure["restartPolicy"] = json!("OnFailure");
    assert_eq!(compute(&pod(on_failure), &r, &hash, &healthy).start, vec![1]);
}

#[test]
fn a_sandbox_without_ip_is_recreated() {
    let mut s = sandbox("s", 2, true);
    s.ips.clear();
    let a = compute(&pod(two()), &rt(vec![s], vec![]), &hash, &healthy);
    assert_eq!(a.create_sandbox, Some(3));
}

#[test]
fn liveness_failure_kills_and_restarts() {
    let r = rt(
        vec![sandbox("s", 0, true)],
        vec![inst("a1", "a", CState::Running, 0, 1), inst("b1", "b", CState::Running, 0, 2)],
    );
    let unhealthy = |id: &str| (id == "b1").then_some("liveness");
    let a = compute(&pod(two()), &r, &hash, &unhealthy);
    assert_eq!(a.start, vec![1]);
    assert_eq!(
        a.kill,
        vec![Kill {
            id: "b1".into(),
            name: "b".into(),
            message: Some("Container b failed liveness probe, will be restarted".into())
        }]
    );
    assert!(!a.kill_pod);
    let mut never = two();
    never["restartPolicy"] = json!("Never");
    let a = compute(&pod(never), &r, &hash, &unhealthy);
    assert!(a.start.is_empty());
    assert_eq!(a.kill[0].message.as_deref(), Some("Container b failed liveness probe"));
}

#[test]
fn a_changed_spec_restarts_the_container() {
    let r = rt(
        vec![sandbox("s", 0, true)],
        vec![inst("a1", "a", CState::Running, 0, 1), inst("b1", "b", CState::Running, 0, 2)],
    );
    let new_hash = |c: &Container| if c.name == "a" { "other".to_owned() } else { "h".to_owned() };
    let a = compute(&pod(two()), &r, &new_hash, &healthy);
    assert_eq!(a.start, vec![0]);
    assert_eq!(a.kill[0].message.as_deref(), Some("Container a definition changed, will be restarted"));
}

#[test]
fn init_containers_run_one_at_a_time() {
    let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
    let a = compute(&pod(spec.clone()), &PodRuntime::default(), &hash, &healthy);
    assert_eq!((a.create_sandbox, a.next_init, a.start.clone()), (Some(0), Some(0), vec![]));
    let s = vec![sandbox("s", 0, true)];
    let running = rt(s.clone(), vec![inst("x", "i1", CState::Running, 0, 1)]);
    assert_eq!(compute(&pod(spec.clone()), &running, &hash, &healthy), Actions::default());
    let first_done = rt(s.clone(), vec![inst("x", "i1", CState::Exited, 0, 1)]);
    assert_eq!(compute(&pod(spec.clone()), &first_done, &hash, &healthy).next_init, Some(1));
    let failed = rt(s.clone(), vec![inst("x", "i1", CState::Exited, 0, 1), inst("y", "i2", CState::Exited, 2, 2)]);
    assert_eq!(compute(&pod(spec.clone()), &failed, &hash, &healthy).next_init, Some(1));
    let mut never = spec.clone();
    never["restartPolicy"] = json!("Never");
    assert!(compute(&pod(never), &failed, &hash, &healthy).kill_pod);
    let all_done = rt(s, vec![inst("x", "i1", CState::Exited, 0, 1), inst("y", "i2", CState::Exited, 0, 2)]);
    let a = compute(&pod(spec), &all_done, &hash, &healthy);
    assert_eq!((a.next_init, a.start), (None, vec![0]));
}

#[test]
fn should_restart_follows_policy_and_deletion() {
    let p = pod(two());
    let spec = &p.spec.as_ref().unwrap().containers[0];
    let exited = rt(vec![], vec![inst("a1", "a", CState::Exited, 0, 1)]);
    assert!(should_restart(spec, &p, &exited));
    assert!(should_restart(spec, &p, &PodRuntime::default()));
    let created = rt(vec![], vec![inst("a1", "a", CState::Created, 0, 1)]);
    assert!(should_restart(spec, &p, &created));
    let mut deleted = p.clone();
    deleted.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    assert!(!should_restart(spec, &deleted, &exited));
}
