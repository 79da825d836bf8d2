//! Ordinal planning: ordered and parallel creation, scale-down in reverse, rolling updates with partition
//! and maxUnavailable.

use super::*;
use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn now() -> Timestamp {
    Timestamp::from_second(1000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn set(replicas: i32, parallel: bool) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("u".into()),
            generation: Some(2),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some("web".into()),
            pod_management_policy: Some(if parallel { "Parallel" } else { "OrderedReady" }.into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy { partition: Some(0), max_unavailable: None }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn revs(s: &StatefulSet) -> Revisions<'_> {
    Revisions { current_set: s, update_set: s, current: "web-old", update: "web-new", collision_count: 0 }
}

/// A pod of revision `rev`, Running and Ready when `ready`.
fn pod(s: &StatefulSet, ord: i32, rev: &str, ready: bool) -> Pod {
    let mut p = ordinals::new_pod(s, &Default::default(), ord, rev);
    p.metadata.uid = Some(format!("uid-{ord}"));
    p.status = Some(PodStatus {
        phase: Some(if ready { "Running" } else { "Pending" }.into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

fn names(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::Create(p) => format!("create {}", p.name_any()),
            Action::Delete(p) => format!("delete {}", p.name_any()),
            Action::Update(p) => format!("update {}", p.name_any()),
            Action::CreateMissingClaims(p) => format!("claims {}", p.name_any()),
            Action::FixClaims(p) => format!("fix {}", p.name_any()),
        })
        .collect()
}

#[test]
fn ordered_ready_creates_one_at_a_time() {
    let s = set(3, false);
    let r = revs(&s);
    assert_eq!(names(&plan(&s, &r, &[], |_| None, now())), ["create web-0"]);
    let p0 = pod(&s, 0, "web-new", false);
    let out = plan(&s, &r, std::slice::from_ref(&p0), |_| None, now());
    assert_eq!(names(&out), ["claims web-0"], "web-1 waits for web-0 to be ready");
    assert_eq!(out.status.replicas, 1);
    assert_eq!(out.status.ready_replicas, Some(0));
    let p0 = pod(&s, 0, "web-new", true);
    assert_eq!(names(&plan(&s, &r, std::slice::from_ref(&p0), |_| None, now())), ["create web-1"]);
    let p1 = pod(&s, 1, "web-new", true);
    let p2 = pod(&s, 2, "web-new", true);
    let out = plan(&s, &r, &[p0, p1, p2], |_| None, now());
    assert!(out.actions.is_empty());
    assert_eq!(out.status.ready_replicas, Some(3));
    assert_eq!(out.status.updated_replicas, Some(3));
    assert_eq!(out.status.observed_generation, Some(2));
}

#[test]
fn parallel_creates_all_at_once() {
    let s = set(3, true);
    assert_eq!(names(&plan(&s, &revs(&s), &[], |_| None, now())), ["create web-0", "create web-1", "create web-2"]);
}

#[test]
fn scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
    let s3 = set(3, false);
    let pods: Vec<Pod> = (0..3).map(|o| pod(&s3, o, "web-new", true)).collect();
    let s1 = set(1, false);
    assert_eq!(names(&plan(&s1, &revs(&s1), &pods, |_| None, now())), ["delete web-2"]);
    let mut terminating = pods.clone();
    terminating[2].metadata.deletion_timestamp = Some(Time(now()));
    assert!(plan(&s1, &revs(&s1), &terminating, |_| None, now()).actions.is_empty());
    assert_eq!(names(&plan(&s1, &revs(&s1), &pods[..2], |_| None, now())), ["delete web-1"]);
}

#[test]
fn failed_pods_are_replaced() {
    let s = set(2, false);
    let mut p0 = pod(&s, 0, "web-new", true);
    if let Some(st) = p0.status.as_mut() {
        st.phase = Some("Failed".into());
    }
    assert_eq!(names(&plan(&s, &revs(&s), &[p0], |_| None, now())), ["delete web-0"]);
}

#[test]
fn rolling_update_replaces_from_the_top_and_honours_the_partition() {
    let s = set(3, false);
    let old: Vec<Pod> = (0..3).map(|o| pod(&s, o, "web-old", true)).collect();
    let out = plan(&s, &revs(&s), &old, |_| None, now());
    assert_eq!(names(&out), ["delete web-2"]);
    assert_eq!(out.status.current_replicas, Some(2));
    // web-2 updated but not ready yet: wait.
    let mut pods = old.clone();
    pods[2] = pod(&s, 2, "web-new", false);
    let out = plan(&s, &revs(&s), &pods, |_| None, now());
    assert!(names(&out).iter().all(|a| !a.starts_with("delete")), "{:?}", names(&out));
    let mut part = set(3, false);
    if let Some(ru) =
        part.spec.as_mut().and_then(|sp| sp.update_strategy.as_mut()).and_then(|u| u.rolling_update.as_mut())
    {
        ru.partition = Some(2);
    }
    let mut pods = old;
    pods[2] = pod(&part, 2, "web-new", true);
    assert!(plan(&part, &revs(&part), &pods, |_| None, now()).actions.is_empty(), "ordinals below the partition stay");
}

#[test]
fn max_unavailable_deletes_several() {
    let mut s = set(4, false);
    if let Some(ru) = s.spec.as_mut().and_then(|sp| sp.update_strategy.as_mut()).and_then(|u| u.rolling_update.as_mut())
    {
        ru.max_unavailable = Some(IntOrString::Int(2));
    }
    let old: Vec<Pod> = (0..4).map(|o| pod(&s, o, "web-old", true)).collect();
    assert_eq!(names(&plan(&s, &revs(&s), &old, |_| None, now())), ["delete web-3", "delete web-2"]);
}

#[test]
fn new_replicas_below_the_partition_get_the_current_revision() {
    let mut s = set(3, false);
    if let Some(ru) = s.spec.as_mut().and_then(|sp| sp.update_strategy.as_mut()).and_then(|u| u.rolling_update.as_mut())
    {
        ru.partition = Some(2);
    }
    let r = revs(&s);
    assert_eq!(ordinals::pod_revision(&new_versioned_pod(&r, 1)), "web-old");
    assert_eq!(ordinals::pod_revision(&new_versioned_pod(&r, 2)), "web-new");
}
