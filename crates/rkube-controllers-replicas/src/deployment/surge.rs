//! Rolling-update arithmetic (upstream's `deploymentutil`): maxSurge and maxUnavailable as ints or
//! percentages (surge rounds up, unavailability rounds down, never both zero), how far the new ReplicaSet
//! may grow, and how a resize of the Deployment is spread over its active ReplicaSets in proportion.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::history::{MAX_REPLICAS, annotation_i32};

/// `spec.replicas` of a Deployment (default 1).
pub(crate) fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet.
pub(crate) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the Deployment uses the RollingUpdate strategy (the default).
pub(crate) fn is_rolling(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// An int, or a percentage of `total` rounded up or down (upstream's `GetScaledValueFromIntOrPercent`).
pub(crate) fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                // Validation refuses anything else; treat it as zero rather than fail the rollout.
                return 0;
            };
            let product = p * i64::from(total);
            let scaled = if round_up { (product + 99).div_euclid(100) } else { product.div_euclid(100) };
            i32::try_from(scaled).unwrap_or(i32::MAX)
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas; when both come out zero, one pod may be unavailable,
/// or the rollout could never move.
pub(crate) fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let zero = IntOrString::Int(0);
    let s = scaled_value(surge.unwrap_or(&zero), desired, true);
    let u = scaled_value(unavailable.unwrap_or(&zero), desired, false);
    if s == 0 && u == 0 { (0, 1) } else { (s, u) }
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(ru.and_then(|r| r.max_surge.as_ref()), ru.and_then(|r| r.max_unavailable.as_ref()), desired(d))
}

/// How many pods above `spec.replicas` a rolling update may run.
pub(crate) fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// How many of `spec.replicas` may be unavailable during a rolling update (at most all of them).
pub(crate) fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired(d))
}

/// The size the new ReplicaSet may have now, given every ReplicaSet's `spec.replicas` (`all` includes the
/// new one).
pub(crate) fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return desired(d);
    }
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = desired(d) + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(desired(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + up
}

/// The share of a resize by `to_add` that `rs` gets, given `added` already handed out (upstream's
/// `GetProportion`).
pub(crate) fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
}

/// How much `rs` grows or shrinks when the Deployment's size changes: its share of the old size (the
/// max-replicas annotation) applied to the new one.
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if desired(d) == 0 {
        return -rs_replicas(rs);
    }
    let new_total = desired(d) + max_surge(d);
    let old_total =
        annotation_i32(rs, MAX_REPLICAS).unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if old_total == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(new_total) / f64::from(old_total);
    // Go's math.Round: halves away from zero, as f64::round.
    size.round() as i32 - rs_replicas(rs)
}

/// The new sizes of the active ReplicaSets `active` when the Deployment is resized proportionally
/// (upstream's `scale` for rolling updates), with the direction (`up`, `down` or empty); the sizes are in
/// the order the ReplicaSets are scaled.
pub(crate) fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> (Vec<(String, i32)>, &'static str) {
    let total: i32 = active.iter().map(|rs| rs_replicas(rs)).sum();
    let allowed = if desired(d) > 0 { desired(d) + max_surge(d) } else { 0 };
    let to_add = allowed - total;
    let mut order: Vec<&ReplicaSet> = active.to_vec();
    let created = |rs: &ReplicaSet| (rs.metadata.creation_timestamp.as_ref().map(|t| t.0), rs.metadata.name.clone());
    let op = if to_add > 0 {
        // Larger first; among equals the newer first.
        order.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| created(b).cmp(&created(a))));
        "up"
    } else if to_add < 0 {
        // Larger first; among equals the older first.
        order.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| created(a).cmp(&created(b))));
        "down"
    } else {
        ""
    };
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = order
        .iter()
        .map(|rs| {
            let mut size = rs_replicas(rs);
            if to_add != 0 {
                let p = proportion(rs, d, to_add, added);
                size += p;
                added += p;
            }
            (rs.metadata.name.clone().unwrap_or_default(), size)
        })
        .collect();
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    (sizes, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, RollingUpdateDeployment};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    pub(crate) fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    pub(crate) fn rs(name: &str, replicas: i32, created: i64, max_replicas: Option<i32>) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..ReplicaSetSpec::default() }),
            ..ReplicaSet::default()
        };
        rs.metadata.name = Some(name.into());
        rs.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created).ok().map(Time);
        if let Some(m) = max_replicas {
            rs.metadata.annotations = Some([(MAX_REPLICAS.to_owned(), m.to_string())].into());
        }
        rs
    }

    #[test]
    fn percentages_round_as_upstream() {
        assert_eq!(scaled_value(&s("25%"), 10, true), 3);
        assert_eq!(scaled_value(&s("25%"), 10, false), 2);
        assert_eq!(scaled_value(&s("100%"), 7, false), 7);
        assert_eq!(scaled_value(&IntOrString::Int(2), 10, true), 2);
        assert_eq!(resolve_fenceposts(Some(&s("25%")), Some(&s("25%")), 1), (1, 0));
        assert_eq!(resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&s("10%")), 5), (0, 1), "never both zero");
        assert_eq!(resolve_fenceposts(None, None, 5), (0, 1));
        let d = deployment(5, IntOrString::Int(1), IntOrString::Int(1));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 1));
        let d = deployment(3, s("25%"), IntOrString::Int(10));
        assert_eq!(max_unavailable(&d), 3, "capped at the replicas");
        let mut recreate = d.clone();
        if let Some(spec) = recreate.spec.as_mut() {
            spec.strategy = Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None });
        }
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        let d = deployment(5, IntOrString::Int(1), IntOrString::Int(1));
        let old = rs("old", 5, 1, None);
        let new = rs("new", 0, 2, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
        let old = rs("old", 4, 1, None);
        let new = rs("new", 1, 2, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 2);
        let old = rs("old", 5, 1, None);
        let new = rs("new", 1, 2, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1, "already at 6 = 5 + surge");
    }

    #[test]
    fn resizes_spread_proportionally() {
        // Mid-rollout of 10 (surge 3): old 8, new 5 → scale the Deployment to 20 (allowed 20 + 5 = 25).
        let d = deployment(20, s("25%"), s("25%"));
        let old = rs("old", 8, 1, Some(13));
        let new = rs("new", 5, 2, Some(13));
        let (sizes, op) = proportional_sizes(&d, &[&old, &new]);
        assert_eq!(op, "up");
        let total: i32 = sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 25);
        assert_eq!(sizes, vec![("old".to_owned(), 15), ("new".to_owned(), 10)]);
        // Down to zero.
        let d0 = deployment(0, s("25%"), s("25%"));
        let (sizes, op) = proportional_sizes(&d0, &[&old, &new]);
        assert_eq!(op, "down");
        assert!(sizes.iter().all(|(_, n)| *n == 0));
    }
}
