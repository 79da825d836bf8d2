//! A container's cgroup limits (upstream's `generateLinuxContainerResources` on cgroup v1): cpu shares
//! from the request, a CFS quota from the limit, the memory limit, and the OOM score adjustment.

use k8s_openapi::api::core::v1::{Container, Pod};
use rkube_cri::api::LinuxContainerResources;

use super::{NodeResources, qos, quantity};

/// The CFS period the kubelet uses (100ms, in µs).
pub(crate) const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
/// The smallest quota the kernel accepts (1ms).
const MIN_QUOTA: i64 = 1000;

/// Upstream's `MilliCPUToShares`: 1024 shares per cpu, within [2, 262144].
pub(crate) fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    (milli.saturating_mul(SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream's `milliCPUToQuota`: 0 (no quota) without a limit, else the limit's share of the period, at
/// least 1ms.
pub(crate) fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    (milli.saturating_mul(period) / 1000).max(MIN_QUOTA)
}

/// The container's cgroup limits. Hugepage limits, cgroup v2 `unified` settings and swap are left to the
/// runtime's defaults (this node runs cgroup v1 without hugepages).
pub(crate) fn linux_resources(pod: &Pod, container: &Container, node: &NodeResources) -> LinuxContainerResources {
    let res = container.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let cpu_request = quantity::milli_of(requests, "cpu");
    let cpu_limit = quantity::milli_of(limits, "cpu");
    // A request defaults to the limit (the API server does it for new pods; older ones may lack it).
    let shares = if cpu_request == 0 && cpu_limit != 0 { cpu_limit } else { cpu_request };
    LinuxContainerResources {
        cpu_period: CPU_PERIOD,
        cpu_quota: milli_cpu_to_quota(cpu_limit, CPU_PERIOD),
        cpu_shares: milli_cpu_to_shares(shares),
        memory_limit_in_bytes: quantity::value_of(limits, "memory").max(0),
        oom_score_adj: qos::oom_score_adj(pod, container, node.memory_capacity),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testutil::pod;
    use serde_json::json;

    #[test]
    fn shares_and_quota() {
        for (milli, shares) in [(0, 2), (1, 2), (10, 10), (100, 102), (250, 256), (1000, 1024), (500_000, 262_144)] {
            assert_eq!(milli_cpu_to_shares(milli), shares, "{milli}m");
        }
        for (milli, quota) in [(0, 0), (1, 1000), (5, 1000), (100, 10_000), (1500, 150_000)] {
            assert_eq!(milli_cpu_to_quota(milli, CPU_PERIOD), quota, "{milli}m");
        }
    }

    #[test]
    fn container_resources() {
        let node = NodeResources { memory_capacity: 4 << 30, ..Default::default() };
        let cases = [
            ("none", json!({}), (2, 0, 0, 1000)),
            ("request only", json!({"requests": {"cpu": "250m", "memory": "1Gi"}}), (256, 0, 0, 750)),
            ("limit only", json!({"limits": {"cpu": "2", "memory": "128Mi"}}), (2048, 200_000, 128 << 20, 0)),
            (
                "request and limit",
                json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}),
                (102, 50_000, 256 << 20, 985),
            ),
        ];
        for (name, resources, (shares, quota, memory, oom)) in cases {
            let p = pod(json!({"spec": {"containers": [{"name": "a", "resources": resources}]}}));
            let r = linux_resources(&p, &p.spec.as_ref().unwrap().containers[0], &node);
            assert_eq!(r.cpu_shares, shares, "{name}");
            assert_eq!(r.cpu_quota, quota, "{name}");
            assert_eq!(r.cpu_period, CPU_PERIOD, "{name}");
            assert_eq!(r.memory_limit_in_bytes, memory, "{name}");
            assert_eq!(r.oom_score_adj, oom, "{name}");
        }
    }
}
