//! Which NoExecute taints a pod tolerates and for how long (upstream's `ToleratesTaint`,
//! `GetMatchingTolerations` and `getMinTolerationTime`). Unlike upstream, which starts a pod's
//! `tolerationSeconds` when the controller notices the taint, the time counts from the taint's
//! `timeAdded` (when it has one), so a controller restart or a new leader does not extend it.

use k8s_openapi::api::core::v1::{Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
pub(crate) use rkube_client::pods::tolerates;

/// A NoExecute taint on a node and when it counts as added.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tainted {
    /// The taint.
    pub(crate) taint: Taint,
    /// Its `timeAdded` (never later than when we saw it), or when we first saw it.
    pub(crate) since: Timestamp,
}

/// What to do with a pod on a node with NoExecute taints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Some taint is not tolerated: delete the pod now.
    Now,
    /// Every taint is tolerated, some only for a while: delete the pod at this time.
    At(Timestamp),
    /// Every taint is tolerated forever (or there is none).
    Never,
}

/// When `taint` counts as added: its `timeAdded` (clamped to `now`, in case the writer's clock runs
/// ahead), else the time we saw it first (`seen`), else `now`.
pub(crate) fn since(taint: &Taint, seen: Option<Timestamp>, now: Timestamp) -> Timestamp {
    match &taint.time_added {
        Some(t) => t.0.min(now),
        None => seen.unwrap_or(now),
    }
}

/// The verdict for a pod with `tolerations` on a node with NoExecute `taints`. Each taint is matched by
/// the pod's first toleration that tolerates it, as upstream.
pub(crate) fn verdict(taints: &[Tainted], tolerations: &[Toleration]) -> Verdict {
    let mut at: Option<Timestamp> = None;
    for t in taints {
        let Some(tol) = tolerations.iter().find(|tol| tolerates(tol, &t.taint)) else { return Verdict::Now };
        if let Some(secs) = tol.toleration_seconds {
            let deadline = t.since.saturating_add(SignedDuration::from_secs(secs.max(0))).unwrap_or(t.since);
            at = Some(at.map_or(deadline, |a| a.min(deadline)));
        }
    }
    at.map_or(Verdict::Never, Verdict::At)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn taint(key: &str, value: Option<&str>, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: "NoExecute".into(),
            time_added: added.map(|s| Time(ts(s))),
        }
    }

    fn tol(key: &str, op: &str, value: Option<&str>, effect: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: value.map(Into::into),
            effect: Some(effect.into()),
            toleration_seconds: secs,
        }
    }

    #[test]
    fn matching_follows_key_effect_operator_and_value() {
        let t = taint("k", Some("v"), None);
        assert!(tolerates(&tol("k", "Equal", Some("v"), "NoExecute", None), &t));
        assert!(!tolerates(&tol("k", "Equal", Some("w"), "NoExecute", None), &t));
        assert!(tolerates(&tol("k", "Exists", None, "", None), &t));
        assert!(!tolerates(&tol("k", "Exists", None, "NoSchedule", None), &t));
        assert!(tolerates(&tol("", "Exists", None, "", None), &t), "empty key with Exists tolerates everything");
        assert!(!tolerates(&tol("other", "Exists", None, "", None), &t));
    }

    #[test]
    fn toleration_seconds_count_from_time_added() {
        let now = ts(1000);
        let unreachable = Tainted {
            taint: taint("node.kubernetes.io/unreachable", None, Some(990)),
            since: since(&taint("u", None, Some(990)), None, now),
        };
        assert_eq!(unreachable.since, ts(990));
        let two = tol("node.kubernetes.io/unreachable", "Exists", None, "NoExecute", Some(2));
        assert_eq!(verdict(std::slice::from_ref(&unreachable), std::slice::from_ref(&two)), Verdict::At(ts(992)));
        let forever = tol("node.kubernetes.io/unreachable", "Exists", None, "NoExecute", None);
        assert_eq!(verdict(std::slice::from_ref(&unreachable), std::slice::from_ref(&forever)), Verdict::Never);
        assert_eq!(verdict(std::slice::from_ref(&unreachable), &[]), Verdict::Now);
        let negative = tol("node.kubernetes.io/unreachable", "Exists", None, "NoExecute", Some(-5));
        assert_eq!(verdict(std::slice::from_ref(&unreachable), &[negative]), Verdict::At(ts(990)));
        // Two taints: the earliest deadline wins; one untolerated taint means now.
        let other = Tainted { taint: taint("example.com/x", Some("y"), None), since: ts(995) };
        let other_tol = tol("example.com/x", "Equal", Some("y"), "NoExecute", Some(1));
        let both = [unreachable.clone(), other.clone()];
        assert_eq!(verdict(&both, &[forever.clone(), other_tol]), Verdict::At(ts(996)));
        assert_eq!(verdict(&both, &[forever]), Verdict::Now);
        assert_eq!(verdict(&[], &[two]), Verdict::Never);
    }

    #[test]
    fn since_prefers_time_added_but_never_the_future() {
        let now = ts(100);
        assert_eq!(since(&taint("k", None, Some(50)), Some(ts(80)), now), ts(50));
        assert_eq!(since(&taint("k", None, Some(500)), None, now), now);
        assert_eq!(since(&taint("k", None, None), Some(ts(80)), now), ts(80));
        assert_eq!(since(&taint("k", None, None), None, now), now);
    }
}
