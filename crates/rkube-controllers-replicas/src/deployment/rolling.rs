//! The RollingUpdate strategy (upstream's `rolloutRolling`): grow the new ReplicaSet within maxSurge,
//! shrink old ones within maxUnavailable (unhealthy pods first), and clean up once complete.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::Controller;
use super::history::by_creation;
use super::progress;
use super::scale::active;
use super::surge::{desired, max_unavailable, new_rs_new_replicas, rs_replicas};
use rkube_client::Result;

fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// How many old pods may go now: the pods above minimum availability, less the new ReplicaSet's pods that
/// are not available yet (they may never become so).
pub(crate) fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let all_pods: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let min_available = desired(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - available(new_rs);
    all_pods - min_available - new_unavailable
}

/// Scale-downs of unhealthy old pods (oldest ReplicaSets first), at most `max` in all: (name, new size).
pub(crate) fn unhealthy_scale_downs(old: &[&ReplicaSet], max: i32) -> Vec<(String, i32)> {
    let mut order = old.to_vec();
    order.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut out = Vec::new();
    for rs in order {
        if total >= max {
            break;
        }
        let (replicas, avail) = (rs_replicas(rs), available(rs));
        if replicas == 0 || replicas == avail {
            continue;
        }
        let n = (max - total).min(replicas - avail);
        out.push((rs.metadata.name.clone().unwrap_or_default(), replicas - n));
        total += n;
    }
    out
}

/// Scale-downs of old ReplicaSets (oldest first) as far as availability allows, `all` holding current
/// sizes and availability: (name, new size).
pub(crate) fn available_scale_downs(d: &Deployment, all: &[&ReplicaSet], old: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let min_available = desired(d) - max_unavailable(d);
    let available_pods: i32 = all.iter().map(|rs| available(rs)).sum();
    if available_pods <= min_available {
        return Vec::new();
    }
    let budget = available_pods - min_available;
    let mut order = old.to_vec();
    order.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut out = Vec::new();
    for rs in order {
        if total >= budget {
            break;
        }
        if rs_replicas(rs) == 0 {
            continue;
        }
        let n = rs_replicas(rs).min(budget - total);
        out.push((rs.metadata.name.clone().unwrap_or_default(), rs_replicas(rs) - n));
        total += n;
    }
    out
}

impl Controller {
    /// One pass of a rolling update.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>> {
        let (new_rs, mut old) = self.get_all(d, rs_list, true).await?;
        let Some(mut new_rs) = new_rs else {
            return self.sync_rollout_status(d, None, &old).await;
        };
        // Grow the new ReplicaSet if we can.
        let target = {
            let mut all: Vec<&ReplicaSet> = old.iter().collect();
            all.push(&new_rs);
            if rs_replicas(&new_rs) > desired(d) { desired(d) } else { new_rs_new_replicas(d, &all, &new_rs) }
        };
        if rs_replicas(&new_rs) != target && self.scale_and_record(&mut new_rs, target, d).await? {
            return self.sync_rollout_status(d, Some(&new_rs), &old).await;
        }
        // Shrink old ones if we can.
        if self.reconcile_old(d, &mut old, &new_rs).await? {
            return self.sync_rollout_status(d, Some(&new_rs), &old).await;
        }
        if progress::complete(d, &d.status.clone().unwrap_or_default()) {
            self.clean_up(d, &old).await?;
        }
        self.sync_rollout_status(d, Some(&new_rs), &old).await
    }

    async fn reconcile_old(&self, d: &Deployment, old: &mut [ReplicaSet], new_rs: &ReplicaSet) -> Result<bool> {
        if active(old.iter()).is_empty() {
            return Ok(false);
        }
        let max = {
            let mut all: Vec<&ReplicaSet> = old.iter().collect();
            all.push(new_rs);
            max_scaled_down(d, &all, new_rs)
        };
        if max <= 0 {
            return Ok(false);
        }
        let mut scaled = 0;
        let plan = unhealthy_scale_downs(&active(old.iter()), max);
        for (name, size) in plan {
            if let Some(rs) = old.iter_mut().find(|rs| rs.metadata.name.as_deref() == Some(name.as_str())) {
                let before = rs_replicas(rs);
                self.scale_and_record(rs, size, d).await?;
                scaled += before - size;
            }
        }
        let plan = {
            let mut all: Vec<&ReplicaSet> = old.iter().collect();
            all.push(new_rs);
            available_scale_downs(d, &all, &active(old.iter()))
        };
        for (name, size) in plan {
            if let Some(rs) = old.iter_mut().find(|rs| rs.metadata.name.as_deref() == Some(name.as_str())) {
                let before = rs_replicas(rs);
                self.scale_and_record(rs, size, d).await?;
                scaled += before - size;
            }
        }
        Ok(scaled > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn deployment(replicas: i32, surge: i32, unavailable: i32) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(surge)),
                        max_unavailable: Some(IntOrString::Int(unavailable)),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn rs(name: &str, replicas: i32, avail: i32, created: i64) -> ReplicaSet {
        let mut rs = ReplicaSet {
            spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..ReplicaSetSpec::default() }),
            status: Some(ReplicaSetStatus { replicas, available_replicas: Some(avail), ..ReplicaSetStatus::default() }),
            ..ReplicaSet::default()
        };
        rs.metadata.name = Some(name.into());
        rs.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created).ok().map(Time);
        rs
    }

    #[test]
    fn rolling_steps_keep_availability() {
        // 5 replicas, surge 1, unavailable 1: old 5/5 available, new just scaled to 1 (not available yet).
        let d = deployment(5, 1, 1);
        let old = rs("old", 5, 5, 1);
        let new = rs("new", 1, 0, 2);
        assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 6 - 4 - 1);
        assert!(unhealthy_scale_downs(&[&old], 1).is_empty(), "all old pods are healthy");
        assert_eq!(available_scale_downs(&d, &[&old, &new], &[&old]), vec![("old".to_owned(), 4)]);
        // Old 4/4, new 2/1: 5 available, may drop to 4.
        let old = rs("old", 4, 4, 1);
        let new = rs("new", 2, 1, 2);
        assert_eq!(available_scale_downs(&d, &[&old, &new], &[&old]), vec![("old".to_owned(), 3)]);
        // Nothing available beyond the minimum: no scale-down.
        let new = rs("new", 2, 0, 2);
        assert!(available_scale_downs(&d, &[&old, &new], &[&old]).is_empty());
    }

    #[test]
    fn unhealthy_old_pods_go_first_oldest_first() {
        let a = rs("a", 3, 1, 1);
        let b = rs("b", 2, 0, 2);
        assert_eq!(unhealthy_scale_downs(&[&b, &a], 3), vec![("a".to_owned(), 1), ("b".to_owned(), 1)]);
    }
}
