//! Why a pod fits nowhere, worded as upstream's `FitError`: `0/N nodes are available: <count> <reason>, ...`
//! with the reasons sorted, then the post-filter (preemption) message.

use std::collections::HashMap;

use crate::framework::Status;

/// The filters' verdicts for one scheduling attempt that found no node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Diagnosis {
    /// Node name → why it was rejected.
    pub(crate) statuses: HashMap<String, Status>,
    /// Set when a PreFilter rejected the pod on every node.
    pub(crate) pre_filter: Option<Status>,
    /// How many nodes the cluster has.
    pub(crate) num_all_nodes: usize,
}

impl Diagnosis {
    /// The plugins that rejected the pod (for requeueing on cluster events).
    pub(crate) fn plugins(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.statuses.values().map(|s| s.plugin).collect();
        out.extend(self.pre_filter.iter().map(|s| s.plugin));
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `"<count> <reason>"` for each distinct reason, sorted as strings (upstream's histogram).
pub(crate) fn histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut out: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    out.sort();
    out
}

/// `0/N nodes are available: <reasons>.` plus ` <post filter message>.` when there is one.
pub(crate) fn fit_error(
    num_all_nodes: usize,
    pre_filter: Option<&str>,
    reasons: &[String],
    post_filter: &str,
) -> String {
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if let Some(p) = pre_filter {
        msg.push_str(&format!(" {p}."));
    } else if !reasons.is_empty() {
        msg.push_str(&format!(" {}.", reasons.join(", ")));
    }
    let post = post_filter.trim_end_matches('.');
    if !post.is_empty() {
        msg.push_str(&format!(" {post}."));
    }
    msg
}

impl Diagnosis {
    /// The FailedScheduling message, with the post-filter's message (empty when preemption nominated a node).
    pub(crate) fn message(&self, post_filter: &str) -> String {
        let pre = self.pre_filter.as_ref().map(|s| s.reasons.join(", "));
        fit_error(self.num_all_nodes, pre.as_deref(), &histogram(self.statuses.values()), post_filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, Status};

    #[test]
    fn message_sorts_reasons_with_counts_and_appends_preemption() {
        let mut d = Diagnosis { num_all_nodes: 3, ..Diagnosis::default() };
        d.statuses.insert(
            "a".into(),
            Status::unresolvable("TaintToleration", "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        );
        d.statuses.insert("b".into(), Status::unschedulable("NodeResourcesFit", "Insufficient cpu"));
        d.statuses.insert(
            "c".into(),
            Status {
                code: Code::Unschedulable,
                reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                plugin: "NodeResourcesFit",
            },
        );
        let post =
            format!("preemption: {}", fit_error(3, None, &["3 Preemption is not helpful for scheduling".into()], ""));
        assert_eq!(
            d.message(&post),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint \
             {node.kubernetes.io/unreachable: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: \
             3 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            d.message(""),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu."
        );
        assert_eq!(d.plugins(), vec!["NodeResourcesFit", "TaintToleration"]);
    }
}
