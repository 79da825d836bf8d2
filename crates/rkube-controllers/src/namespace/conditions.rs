//! The status conditions a terminating namespace carries, with upstream's types, reasons and messages,
//! so that `kubectl describe namespace` says why a deletion waits.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The condition types the namespace controller owns, in upstream's order, with their "all is well"
/// reason and message.
const OWNED: [(&str, &str, &str); 5] = [
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
];

/// What one deletion pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Discovery failed with this message.
    pub(crate) discovery_error: Option<String>,
    /// Errors deleting or listing content, one per resource.
    pub(crate) content_errors: Vec<String>,
    /// Objects left per resource (`configmaps.`, `deployments.apps`).
    pub(crate) remaining: BTreeMap<String, usize>,
    /// Objects left per finalizer they carry.
    pub(crate) finalizers: BTreeMap<String, usize>,
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
    }
}

/// The failing conditions `findings` call for (types absent here are "all is well").
fn failing(findings: &Findings) -> Vec<NamespaceCondition> {
    let mut out = Vec::new();
    if let Some(e) = &findings.discovery_error {
        out.push(condition("NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed", e.clone()));
    }
    if !findings.content_errors.is_empty() {
        let mut msgs = findings.content_errors.clone();
        msgs.sort();
        let message = format!("Failed to delete all resource types, {} remaining: {}", msgs.len(), msgs.join(", "));
        out.push(condition("NamespaceDeletionContentFailure", "True", "ContentDeletionFailed", message));
    }
    let remaining: Vec<String> = findings
        .remaining
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect();
    if !remaining.is_empty() {
        let message = format!("Some resources are remaining: {}", remaining.join(", "));
        out.push(condition("NamespaceContentRemaining", "True", "SomeResourcesRemain", message));
    }
    let finalizers: Vec<String> = findings
        .finalizers
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    if !finalizers.is_empty() {
        let message = format!("Some content in the namespace has finalizers remaining: {}", finalizers.join(", "));
        out.push(condition("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain", message));
    }
    out
}

/// Brings `conditions` in line with `findings`; returns whether anything changed (only then is the status
/// written, so that an unchanged pass causes no write and no watch event). The transition time moves only
/// when a condition's status flips, as upstream.
pub(crate) fn update(conditions: &mut Vec<NamespaceCondition>, findings: &Findings) -> bool {
    let failing = failing(findings);
    let mut changed = false;
    for (type_, reason, message) in OWNED {
        let wanted = failing
            .iter()
            .find(|c| c.type_ == type_)
            .cloned()
            .unwrap_or_else(|| condition(type_, "False", reason, message.to_owned()));
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(wanted);
                changed = true;
            }
            Some(old)
                if old.status != wanted.status || old.reason != wanted.reason || old.message != wanted.message =>
            {
                if old.status != wanted.status {
                    old.last_transition_time = wanted.last_transition_time.clone();
                }
                old.status = wanted.status;
                old.reason = wanted.reason;
                old.message = wanted.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(c: &'a [NamespaceCondition], t: &str) -> &'a NamespaceCondition {
        c.iter().find(|x| x.type_ == t).unwrap_or_else(|| panic!("no {t}"))
    }

    #[test]
    fn a_clean_pass_sets_the_five_ok_conditions_once() {
        let mut c = Vec::new();
        assert!(update(&mut c, &Findings::default()));
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|x| x.status == "False"));
        assert_eq!(get(&c, "NamespaceFinalizersRemaining").reason.as_deref(), Some("ContentHasNoFinalizers"));
        assert!(!update(&mut c, &Findings::default()), "an unchanged pass writes nothing");
    }

    #[test]
    fn remaining_content_and_finalizers_read_like_upstream() {
        let mut c = Vec::new();
        let mut f = Findings::default();
        f.remaining.insert("configmaps.".into(), 2);
        f.remaining.insert("deployments.apps".into(), 1);
        f.finalizers.insert("example.com/hold".into(), 1);
        f.content_errors.push("b failed".into());
        f.content_errors.push("a failed".into());
        assert!(update(&mut c, &f));
        let r = get(&c, "NamespaceContentRemaining");
        assert_eq!((r.status.as_str(), r.reason.as_deref()), ("True", Some("SomeResourcesRemain")));
        assert_eq!(
            r.message.as_deref(),
            Some(
                "Some resources are remaining: configmaps. has 2 resource instances, deployments.apps has 1 resource instances"
            )
        );
        let fin = get(&c, "NamespaceFinalizersRemaining");
        assert_eq!(
            fin.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
        );
        let failed = get(&c, "NamespaceDeletionContentFailure");
        assert_eq!(
            failed.message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a failed, b failed")
        );
        // Back to clean: statuses flip to False.
        assert!(update(&mut c, &Findings::default()));
        assert!(c.iter().all(|x| x.status == "False"));
    }
}
