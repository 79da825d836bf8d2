//! Claim construction and retention-policy ownership.

use super::*;
use k8s_openapi::api::apps::v1::{StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

fn set(when_scaled: &str, when_deleted: &str) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("set-uid".into()),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some([("app".into(), "web".into())].into()),
                match_expressions: None,
            },
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_scaled: Some(when_scaled.into()),
                when_deleted: Some(when_deleted.into()),
            }),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("www".into()),
                    labels: Some([("tier".into(), "db".into())].into()),
                    ..Default::default()
                },
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), uid: Some(format!("{name}-uid")), ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn claims_are_named_and_labelled_per_ordinal() {
    let s = set("Retain", "Retain");
    let claims = claims_for(&s, &pod("web-1"));
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-1"));
    let labels = claims[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("db"));
}

#[test]
fn retention_policy_decides_owners() {
    let p0 = pod("web-0");
    let p5 = pod("web-5"); // out of range: scaled down
    let fresh = |s: &StatefulSet, p: &Pod| claims_for(s, p).remove(0);
    let uids = |r: Vec<OwnerReference>| r.into_iter().map(|r| r.uid).collect::<Vec<_>>();
    let retain = set("Retain", "Retain");
    assert!(owners_up_to_date(&fresh(&retain, &p0), &retain, &p0));
    assert!(uids(wanted_owner_refs(&fresh(&retain, &p0), &retain, &p0)).is_empty());
    let on_delete = set("Retain", "Delete");
    let c = fresh(&on_delete, &p0);
    assert!(!owners_up_to_date(&c, &on_delete, &p0));
    assert_eq!(uids(wanted_owner_refs(&c, &on_delete, &p0)), ["set-uid"]);
    let on_scale = set("Delete", "Retain");
    assert!(owners_up_to_date(&fresh(&on_scale, &p0), &on_scale, &p0));
    assert_eq!(uids(wanted_owner_refs(&fresh(&on_scale, &p5), &on_scale, &p5)), ["web-5-uid"]);
    let both = set("Delete", "Delete");
    let mut owned = fresh(&both, &p5);
    owned.metadata.owner_references = Some(wanted_owner_refs(&owned, &both, &p0));
    assert!(!owners_up_to_date(&owned, &both, &p5), "a scaled-down pod's claim moves from the set to the pod");
    assert_eq!(uids(wanted_owner_refs(&owned, &both, &p5)), ["web-5-uid"]);
}

#[test]
fn claims_of_an_earlier_pod_are_stale() {
    let s = set("Delete", "Retain");
    let old = pod("web-5");
    let mut c = claims_for(&s, &old).remove(0);
    c.metadata.owner_references = Some(wanted_owner_refs(&c, &s, &old));
    let mut new = pod("web-5");
    new.metadata.uid = None;
    assert!(stale_for_pod(&c, &new));
    assert!(!stale_for_pod(&c, &old));
    assert!(!retains_on_scale(&s));
}
