//! Indexed Job bookkeeping: sets of completion indexes as ordered intervals (`status.completedIndexes`,
//! e.g. `0-2,4,6,7`), which indexes still need a pod, and which pods are duplicates of an index.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use super::pods::{completion_index, deletion_order, has_tracking_finalizer};

/// Sorted, non-overlapping, non-adjacent `[first, last]` intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Intervals(Vec<(i32, i32)>);

impl Intervals {
    /// Parses upstream's text form, ignoring malformed parts and indexes at or beyond `completions`.
    pub(crate) fn parse(s: &str, completions: i32) -> Intervals {
        let mut out = Intervals::default();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(a), Ok(b)) = (a, b) else { continue };
            if a < 0 || a > b || a >= completions {
                continue;
            }
            out = out.merge(&Intervals(vec![(a, b.min(completions - 1))]));
        }
        out
    }

    /// These intervals plus the sorted `indexes`.
    pub(crate) fn with_indexes(&self, indexes: &[i32]) -> Intervals {
        self.merge(&Intervals(indexes.iter().map(|i| (*i, *i)).collect()))
    }

    /// The union of two interval sets.
    pub(crate) fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<(i32, i32)> = self.0.iter().chain(other.0.iter()).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(i32, i32)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Intervals(out)
    }

    /// Whether `ix` is in the set.
    pub(crate) fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&ix))
    }

    /// How many indexes the set holds.
    pub(crate) fn total(&self) -> i32 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }
}

impl fmt::Display for Intervals {
    /// Upstream's form: `a`, `a,b` for two adjacent indexes, `a-b` for longer runs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
            if b > a {
                write!(f, "{}{b}", if *b == a + 1 { ',' } else { '-' })?;
            }
        }
        Ok(())
    }
}

impl Intervals {
    /// The indexes in both sets.
    pub(crate) fn intersection(&self, other: &Intervals) -> Intervals {
        let mut out = Vec::new();
        for (a, b) in &self.0 {
            for (c, d) in &other.0 {
                let (lo, hi) = (*a.max(c), *b.min(d));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        Intervals::default().merge(&Intervals(out))
    }
}

/// Upstream's `matchSuccessPolicy`: the message of the first `spec.successPolicy` rule the succeeded
/// indexes satisfy (`Matched rules at index <i>`).
pub(crate) fn match_success_policy(
    policy: Option<&k8s_openapi::api::batch::v1::SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.0.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(text), count) => {
                let required = Intervals::parse(text, completions);
                let matched = succeeded.intersection(&required);
                if required.0.is_empty() || matched.0.is_empty() {
                    continue;
                }
                match count {
                    Some(n) => n <= matched.total(),
                    None => required.total() == matched.total(),
                }
            }
            (None, Some(n)) => n <= succeeded.total(),
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

/// Upstream's `calculateSucceededIndexes`: the indexes in `status.completedIndexes` and those of succeeded
/// pods not yet counted (still holding the tracking finalizer).
pub(crate) fn succeeded_indexes(completed: &str, completions: i32, pods: &[&Pod]) -> (Intervals, Intervals) {
    let prev = Intervals::parse(completed, completions);
    let mut new: Vec<i32> = pods
        .iter()
        .filter(|p| has_tracking_finalizer(p) && rkube_client::pods::phase(p) == "Succeeded")
        .filter_map(|p| completion_index(p))
        .filter(|ix| *ix < completions)
        .collect();
    new.sort_unstable();
    new.dedup();
    let all = prev.with_indexes(&new);
    (prev, all)
}

/// Upstream's `firstPendingIndexes`: the lowest `count` indexes below `completions` that have neither
/// succeeded nor an active pod.
pub(crate) fn first_pending(succeeded: &Intervals, active: &[&Pod], count: usize, completions: i32) -> Vec<i32> {
    let busy: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
    (0..completions).filter(|ix| !succeeded.has(*ix) && !busy.contains(ix)).take(count).collect()
}

/// Upstream's `appendDuplicatedIndexPodsForRemoval`: active pods without a valid index, with an index at
/// or beyond `completions`, or repeating an index (all but the one to keep) go to removal.
pub(crate) fn duplicates_for_removal<'a>(pods: &[&'a Pod], completions: i32) -> (Vec<&'a Pod>, Vec<&'a Pod>) {
    let mut sorted: Vec<&Pod> = pods.to_vec();
    sorted.sort_by_key(|p| completion_index(p).map_or(-1, i64::from));
    let (mut rm, mut left) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < sorted.len() {
        let ix = completion_index(sorted[i]);
        let mut j = i;
        while j < sorted.len() && completion_index(sorted[j]) == ix {
            j += 1;
        }
        let mut group: Vec<&Pod> = sorted[i..j].to_vec();
        match ix {
            Some(ix) if ix < completions => {
                group.sort_by(|a, b| deletion_order(a, b));
                if let Some(keep) = group.pop() {
                    left.push(keep);
                }
                rm.extend(group);
            }
            _ => rm.extend(group),
        }
        i = j;
    }
    (rm, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use crate::job::pods::{INDEX_KEY, TRACKING_FINALIZER};

    fn pod(ix: &str, phase: &str, finalizer: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                annotations: Some([(INDEX_KEY.to_owned(), ix.to_owned())].into()),
                finalizers: finalizer.then(|| vec![TRACKING_FINALIZER.to_owned()]),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        }
    }

    #[test]
    fn intervals_read_and_write_upstreams_form() {
        let i = Intervals::parse("0-2,4,6,7,9-12", 11);
        assert_eq!(i.to_string(), "0-2,4,6,7,9,10");
        assert_eq!(i.total(), 8);
        assert!(i.has(10) && !i.has(5) && !i.has(11));
        assert_eq!(Intervals::parse("", 3).to_string(), "");
        assert_eq!(Intervals::parse("x,1", 3).to_string(), "1");
        assert_eq!(i.with_indexes(&[3, 5, 8]).to_string(), "0-10");
        assert_eq!(Intervals::default().with_indexes(&[1, 2]).to_string(), "1,2");
    }

    #[test]
    fn success_policy_rules() {
        use k8s_openapi::api::batch::v1::{SuccessPolicy, SuccessPolicyRule};
        let rule = |ix: Option<&str>, n: Option<i32>| SuccessPolicyRule {
            succeeded_indexes: ix.map(Into::into),
            succeeded_count: n,
        };
        let policy = SuccessPolicy { rules: vec![rule(Some("0,2-4"), None), rule(None, Some(3))] };
        let done = Intervals::parse("0,2,3", 10);
        assert_eq!(match_success_policy(Some(&policy), 10, &done).as_deref(), Some("Matched rules at index 1"));
        assert_eq!(match_success_policy(Some(&policy), 10, &Intervals::parse("0,2", 10)), None);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &Intervals::parse("0,2-4", 10)).as_deref(),
            Some("Matched rules at index 0")
        );
        let counted = SuccessPolicy { rules: vec![rule(Some("5-9"), Some(2))] };
        assert_eq!(
            match_success_policy(Some(&counted), 10, &Intervals::parse("1,6,8", 10)).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(match_success_policy(None, 10, &done), None);
        assert_eq!(Intervals::parse("0-5,8", 10).intersection(&Intervals::parse("3-9", 10)).to_string(), "3-5,8");
    }

    #[test]
    fn succeeded_indexes_count_only_uncounted_valid_pods() {
        let pods = [
            pod("3", "Succeeded", true),
            pod("1", "Succeeded", false),
            pod("9", "Succeeded", true),
            pod("2", "Running", true),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let (prev, all) = succeeded_indexes("0", 5, &refs);
        assert_eq!(prev.to_string(), "0");
        assert_eq!(all.to_string(), "0,3");
    }

    #[test]
    fn pending_indexes_skip_succeeded_and_active() {
        let active = [pod("1", "Running", true), pod("4", "Pending", true)];
        let refs: Vec<&Pod> = active.iter().collect();
        let done = Intervals::parse("0,2", 6);
        assert_eq!(first_pending(&done, &refs, 3, 6), vec![3, 5]);
        assert_eq!(first_pending(&done, &refs, 1, 6), vec![3]);
    }

    #[test]
    fn duplicate_and_out_of_range_indexes_are_removed() {
        let pods = [
            pod("1", "Running", true),
            pod("1", "Pending", true),
            pod("7", "Running", true),
            pod("x", "Running", true),
            pod("0", "Running", true),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let (rm, left) = duplicates_for_removal(&refs, 3);
        let ixs = |v: &[&Pod]| v.iter().map(|p| p.annotations_ix()).collect::<Vec<_>>();
        assert_eq!(ixs(&left), vec!["0", "1"]);
        assert_eq!(
            left[1].status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running"),
            "the running duplicate stays"
        );
        assert_eq!(ixs(&rm), vec!["x", "1", "7"]);
    }

    trait Ix {
        fn annotations_ix(&self) -> String;
    }
    impl Ix for Pod {
        fn annotations_ix(&self) -> String {
            self.metadata.annotations.as_ref().and_then(|a| a.get(INDEX_KEY)).cloned().unwrap_or_default()
        }
    }
}
