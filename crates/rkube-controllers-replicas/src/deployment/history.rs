//! A Deployment's ReplicaSets as revisions (upstream's `deploymentutil`): the pod-template hash that names
//! them, which one is "new" (same template ignoring the hash label, so `kubectl rollout undo` makes an old
//! one new again), revision numbers and the annotations carried from the Deployment, and which old
//! ReplicaSets `revisionHistoryLimit` lets go.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Resource;
use serde_json::Value;

/// The label that ties a ReplicaSet and its pods to one template.
pub(crate) const HASH_LABEL: &str = "pod-template-hash";
/// The revision of a ReplicaSet (and of its Deployment: the new ReplicaSet's).
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet had before a rollback made it new again.
pub(crate) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `spec.replicas` when the ReplicaSet was last sized.
pub(crate) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` when the ReplicaSet was last sized.
pub(crate) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` value kept (upstream's `maxRevHistoryLengthInChars`).
pub(crate) const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations that are not copied onto its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// An integer annotation of `obj`.
pub(crate) fn annotation_i32<K: Resource>(obj: &K, key: &str) -> Option<i32> {
    obj.meta().annotations.as_ref()?.get(key)?.parse().ok()
}

/// A ReplicaSet's revision (0 when absent or not a number).
pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The highest revision among `rss`.
pub(crate) fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(revision).max().unwrap_or(0)
}

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream's `rand.SafeEncodeString`: each byte mapped onto letters and digits that cannot spell words.
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

fn fnv32a(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// The pod-template hash: FNV-32a of the template (as JSON) and the collision count, encoded as upstream's
/// `ComputeHash` encodes it.
pub(crate) fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut h = fnv32a(&bytes, 2_166_136_261);
    if let Some(c) = collision_count {
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv32a(&extra, h);
    }
    safe_encode(&h.to_string())
}

/// Drops nulls, empty objects and empty arrays, so that templates differing only in how "nothing" is
/// spelled compare equal (Go's semantic equality of decoded objects).
fn normalize(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> =
                m.into_iter().filter_map(|(k, v)| normalize(v).map(|v| (k, v))).collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a.into_iter().map(|v| normalize(v).unwrap_or(Value::Null)).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        other => Some(other),
    }
}

fn without_hash(t: &PodTemplateSpec) -> Option<Value> {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    normalize(serde_json::to_value(&t).unwrap_or(Value::Null))
}

/// Whether two templates are the same apart from the hash label (upstream's `EqualIgnoreHash`).
pub(crate) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// Oldest first, names breaking ties (upstream's `ReplicaSetsByCreationTimestamp`).
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The index of the Deployment's new ReplicaSet in `rss`: the oldest whose template equals the
/// Deployment's ignoring the hash label.
pub(crate) fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref().map(|s| &s.template)?;
    let mut order: Vec<usize> = (0..rss.len()).collect();
    order.sort_by(|&a, &b| by_creation(&rss[a], &rss[b]));
    order.into_iter().find(|&i| {
        rss[i].spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, template))
    })
}

fn annotations(rs: &mut ReplicaSet) -> &mut BTreeMap<String, String> {
    rs.metadata.annotations.get_or_insert_with(BTreeMap::new)
}

/// Sets the desired/max replicas annotations; whether anything changed.
pub(crate) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = annotations(rs);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_owned(), v);
            changed = true;
        }
    }
    changed
}

/// Copies the Deployment's annotations (but the controller's own and kubectl's last-applied) onto `rs`.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let a = annotations(rs);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Brings the new ReplicaSet's annotations up to date: the Deployment's annotations, revision
/// `new_revision` if higher (keeping the old one in the revision history when an existing ReplicaSet comes
/// back), and for a ReplicaSet about to be created the replicas annotations. Whether anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    replicas: (i32, i32),
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let a = annotations(rs);
    let old = a.get(REVISION).cloned();
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            // Not ours to fix: leave the ReplicaSet alone.
            Err(_) => return false,
        },
    };
    if old_revision < new_revision {
        a.insert(REVISION.to_owned(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.to_owned(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    parts.drain(..start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    a.insert(REVISION_HISTORY.to_owned(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas.0, replicas.1) {
        changed = true;
    }
    changed
}

/// Sets the Deployment's revision annotation; whether it changed.
pub(crate) fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    a.insert(REVISION.to_owned(), revision.to_owned());
    true
}

/// The old ReplicaSets to delete so that at most `limit` remain (oldest revisions first; only scaled-down,
/// settled ones).
pub(crate) fn to_clean_up(old: &[ReplicaSet], limit: i32) -> Vec<&ReplicaSet> {
    let mut alive: Vec<&ReplicaSet> = old.iter().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
    let surplus = alive.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
    if surplus == 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| revision(a).cmp(&revision(b)).then_with(|| by_creation(a, b)));
    alive
        .into_iter()
        .take(surplus)
        .filter(|rs| {
            let status_replicas = rs.status.as_ref().map_or(0, |s| s.replicas);
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            status_replicas == 0
                && rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        if let Some(h) = hash {
            labels.insert(HASH_LABEL.to_owned(), h.to_owned());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Container::default() }],
                ..PodSpec::default()
            }),
        }
    }

    fn rs(name: &str, rev: i64, created: i64, t: PodTemplateSpec, replicas: i32) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), template: Some(t), ..ReplicaSetSpec::default() }),
            status: Some(ReplicaSetStatus { replicas, ..ReplicaSetStatus::default() }),
            ..ReplicaSet::default()
        };
        rs.metadata.name = Some(name.into());
        rs.metadata.annotations = Some([(REVISION.to_owned(), rev.to_string())].into());
        rs.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created).ok().map(Time);
        rs
    }

    fn deployment(t: PodTemplateSpec) -> Deployment {
        Deployment { spec: Some(DeploymentSpec { template: t, ..DeploymentSpec::default() }), ..Deployment::default() }
    }

    #[test]
    fn hashes_are_stable_safe_and_change_with_collisions() {
        let t = template("nginx:1", None);
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert!(h.len() <= 10 && h.chars().all(|c| ALPHANUMS.contains(&(c as u8))), "{h}");
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_ne!(h, compute_hash(&template("nginx:2", None), None));
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn new_replica_set_is_found_ignoring_the_hash() {
        let d = deployment(template("nginx:1", None));
        let rss = vec![
            rs("web-b", 2, 20, template("nginx:2", Some("b")), 0),
            rs("web-a", 1, 10, template("nginx:1", Some("a")), 3),
        ];
        assert_eq!(find_new(&d, &rss), Some(1));
        assert_eq!(find_new(&deployment(template("nginx:3", None)), &rss), None);
        assert_eq!(max_revision(&rss), 2);
        let mut empty_labels = template("nginx:1", None);
        if let Some(m) = empty_labels.metadata.as_mut() {
            m.annotations = Some(BTreeMap::new());
        }
        assert!(equal_ignore_hash(&empty_labels, &template("nginx:1", Some("x"))));
    }

    #[test]
    fn rollback_keeps_revision_history_and_copies_annotations() {
        let mut d = deployment(template("nginx:1", None));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_owned(), "undo".to_owned()),
                (REVISION.to_owned(), "2".to_owned()),
                ("kubectl.kubernetes.io/last-applied-configuration".to_owned(), "{}".to_owned()),
            ]
            .into(),
        );
        let mut old = rs("web-a", 1, 10, template("nginx:1", Some("a")), 0);
        assert!(set_new_rs_annotations(&d, &mut old, 3, true, (5, 6)));
        let a = old.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert_eq!(a.get("kubernetes.io/change-cause").map(String::as_str), Some("undo"));
        assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!a.contains_key(DESIRED_REPLICAS), "existing ReplicaSets get replicas annotations when scaled");
        assert!(!set_new_rs_annotations(&d, &mut old, 3, true, (5, 6)), "nothing more to do");
        assert!(set_new_rs_annotations(&d, &mut old, 5, true, (5, 6)));
        assert_eq!(old.metadata.annotations.unwrap_or_default().get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
        let mut fresh = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut fresh, 1, false, (5, 6)));
        let a = fresh.metadata.annotations.unwrap_or_default();
        assert_eq!(
            (a.get(DESIRED_REPLICAS).cloned(), a.get(MAX_REPLICAS).cloned()),
            (Some("5".into()), Some("6".into()))
        );
        assert!(set_deployment_revision(&mut d, "3"));
        assert!(!set_deployment_revision(&mut d, "3"));
    }

    #[test]
    fn history_limit_deletes_oldest_scaled_down() {
        let old = vec![
            rs("r3", 3, 30, template("3", None), 0),
            rs("r1", 1, 10, template("1", None), 0),
            rs("r2", 2, 20, template("2", None), 1),
        ];
        let names = |v: Vec<&ReplicaSet>| v.iter().filter_map(|r| r.metadata.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(to_clean_up(&old, 1)), vec!["r1"], "r2 still has replicas");
        assert_eq!(names(to_clean_up(&old, 0)), vec!["r1", "r3"]);
        assert!(to_clean_up(&old, 3).is_empty());
    }
}
