//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in equal shares.

use super::MAX_NODE_SCORE;
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;

fn fraction(requested: i64, allocatable: i64) -> Option<f64> {
    (allocatable > 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
}

/// `(1 - standard deviation of the used fractions) * 100`, with the actual requests (as upstream).
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = fraction(node.requested.milli_cpu + pod.requests.milli_cpu, node.allocatable.milli_cpu);
    let mem = fraction(node.requested.memory + pod.requests.memory, node.allocatable.memory);
    let fractions: Vec<f64> = [cpu, mem].into_iter().flatten().collect();
    let std = match fractions.as_slice() {
        [a, b] => (a - b).abs() / 2.0,
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;

    #[test]
    fn balanced_use_scores_highest() {
        let n = node("n", json!({"cpu": "4", "memory": "4Gi", "pods": "10"}), json!({}));
        let even = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}));
        let skewed = pod(json!({"metadata": {"name": "b"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "4"}}}]}}));
        assert_eq!(score(&even, &n), 100);
        assert_eq!(score(&skewed, &n), 50);
    }
}
