//! ControllerRevisions as upstream's `pkg/controller/history` keeps them for DaemonSets and StatefulSets:
//! each revision stores a strategic merge patch that puts a pod template back
//! (`{"spec":{"template":{…,"$patch":"replace"}}}`, what `kubectl rollout undo` applies), is named
//! `<owner>-<hash>`, carries the template's labels plus a hash label, and has a revision number one above
//! the highest before it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::Resource;
use serde_json::{Value, json};

/// The label ControllerRevisions of StatefulSets carry their hash in (upstream's `ControllerRevisionHashLabel`).
pub(crate) const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The label on pods naming their revision (the revision's name for StatefulSets, its hash for DaemonSets),
/// also the hash label of a DaemonSet's revisions.
pub(crate) const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// 32-bit FNV-1 (Go's `fnv.New32`), the hash of `HashControllerRevision`.
pub(crate) fn fnv1_32(data: &[u8]) -> u32 {
    data.iter().fold(2_166_136_261u32, |h, b| h.wrapping_mul(16_777_619) ^ u32::from(*b))
}

/// 32-bit FNV-1a (Go's `fnv.New32a`), the hash of `controller.ComputeHash`.
pub(crate) fn fnv1a_32(data: &[u8]) -> u32 {
    data.iter().fold(2_166_136_261u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(16_777_619))
}

/// Upstream's `rand.SafeEncodeString`: each byte mapped onto consonants and digits that cannot spell words.
pub(crate) fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

/// Compact JSON with object keys sorted at every level (what Go's `json.Marshal` of a map writes), so a
/// hash does not depend on how a value was built or read back.
pub(crate) fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                out.push(b'{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap_or_default());
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).unwrap_or_default()),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

/// `<prefix>-<hash>` with the prefix cut to 223 characters (upstream's `ControllerRevisionName`).
pub(crate) fn revision_name(prefix: &str, hash: &str) -> String {
    let cut = prefix.char_indices().nth(223).map_or(prefix, |(i, _)| &prefix[..i]);
    format!("{cut}-{hash}")
}

/// The revision data for `template`: a strategic merge patch replacing the owner's pod template.
pub(crate) fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The pod template a revision puts back (upstream's `ApplyRevision` for the part revisions hold).
pub(crate) fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// A StatefulSet revision's hash: FNV-1 over the data, then the collision count in decimal
/// (upstream's `HashControllerRevision`).
pub(crate) fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = canonical_json(data);
    if let Some(c) = collision_count {
        bytes.extend(c.to_string().bytes());
    }
    safe_encode(&fnv1_32(&bytes).to_string())
}

/// A DaemonSet template's hash (upstream's `controller.ComputeHash`): FNV-1a over the template, then the
/// collision count as four little-endian bytes. Upstream hashes Go's dump of the struct, which no other
/// language reproduces; this hashes the template's canonical JSON, equally stable.
pub(crate) fn hash_template(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = canonical_json(&serde_json::to_value(template).unwrap_or_default());
    if let Some(c) = collision_count {
        bytes.extend(c.to_le_bytes());
    }
    safe_encode(&fnv1a_32(&bytes).to_string())
}

/// A new revision of `parent` (upstream's `NewControllerRevision`): the template's labels plus
/// `hash_label: hash`, a controller reference, the parent's annotations.
pub(crate) fn new_revision<K: Resource<DynamicType = ()>>(
    parent: &K,
    template: &PodTemplateSpec,
    hash_label: &str,
    hash: &str,
    revision: i64,
) -> ControllerRevision {
    let meta = parent.meta();
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(hash_label.to_owned(), hash.to_owned());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(meta.name.as_deref().unwrap_or_default(), hash)),
            namespace: meta.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations.clone().filter(|a| !a.is_empty()),
            owner_references: Some(vec![rkube_client::pods::controller_ref(parent)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(template_patch(template))),
        revision,
    }
}

/// Sorts by revision number, then creation time, then name (upstream's `SortControllerRevisions`).
pub(crate) fn sort(revs: &mut [ControllerRevision]) {
    revs.sort_by(|a, b| {
        let at = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        a.revision.cmp(&b.revision).then(at(a).cmp(&at(b))).then(a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Same data, and the same hash when both carry one (upstream's `EqualRevision`).
pub(crate) fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let hash = |r: &ControllerRevision| r.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).cloned();
    if let (Some(x), Some(y)) = (hash(a), hash(b))
        && x != y
    {
        return false;
    }
    same_data(a, b)
}

/// Whether two revisions hold the same data (compared as JSON values, whatever the key order).
pub(crate) fn same_data(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    a.data.as_ref().map(|d| &d.0) == b.data.as_ref().map(|d| &d.0)
}

/// One above the highest revision number of `sorted`, 1 when there is none.
pub(crate) fn next_revision(sorted: &[ControllerRevision]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some([("app".into(), "web".into())].into()), ..Default::default() }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv_and_safe_encoding_match_go() {
        // Go: fnv.New32() / New32a() over "hello".
        assert_eq!(fnv1_32(b"hello"), 0xb6fa_7167);
        assert_eq!(fnv1a_32(b"hello"), 0x4f9f_2cab);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }

    #[test]
    fn hashes_follow_the_template_and_the_collision_count() {
        let a = template("nginx:1");
        let b = template("nginx:2");
        assert_eq!(hash_template(&a, None), hash_template(&a.clone(), None));
        assert_ne!(hash_template(&a, None), hash_template(&b, None));
        assert_ne!(hash_template(&a, None), hash_template(&a, Some(1)));
        let pa = template_patch(&a);
        assert_eq!(pa.pointer("/spec/template/$patch"), Some(&json!("replace")));
        assert_ne!(hash_revision(&pa, Some(0)), hash_revision(&pa, Some(1)));
        assert!(hash_revision(&pa, Some(0)).chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        // Key order does not matter.
        let reordered: Value =
            serde_json::from_str(&serde_json::to_string(&pa).unwrap_or_default()).unwrap_or_default();
        assert_eq!(hash_revision(&pa, None), hash_revision(&reordered, None));
    }

    #[test]
    fn revisions_carry_labels_owner_and_template() {
        let mut set = StatefulSet::default();
        set.metadata.name = Some("web".into());
        set.metadata.namespace = Some("ns".into());
        set.metadata.uid = Some("u".into());
        let t = template("nginx:1");
        let r = new_revision(&set, &t, HASH_LABEL, "abc", 3);
        assert_eq!(r.metadata.name.as_deref(), Some("web-abc"));
        let labels = r.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(labels.get(HASH_LABEL).map(String::as_str), Some("abc"));
        assert!(rkube_client::pods::is_controlled_by(&r.metadata, "u"));
        assert_eq!(template_of(&r), Some(t));
        let mut other = new_revision(&set, &template("nginx:2"), HASH_LABEL, "abd", 1);
        assert!(!equal(&r, &other));
        other.data = r.data.clone();
        assert!(!equal(&r, &other), "different hash labels");
        let mut revs = vec![r.clone(), other.clone()];
        sort(&mut revs);
        assert_eq!(revs[0].revision, 1);
        assert_eq!(next_revision(&revs), 4);
        assert_eq!(next_revision(&[]), 1);
    }
}
