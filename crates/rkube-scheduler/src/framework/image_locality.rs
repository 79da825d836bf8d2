//! ImageLocality: prefers nodes that already have the pod's container images, weighted by image size and
//! by how widely the image is spread over the cluster (so that one node does not attract every pod).

use super::MAX_NODE_SCORE;
use crate::cache::{Cache, NodeInfo, normalize_image};
use crate::podinfo::PodInfo;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub(crate) fn score(pod: &PodInfo, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let Some(spec) = pod.pod.spec.as_ref() else { return vec![0; nodes.len()] };
    let images: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter_map(|c| c.image.as_deref())
        .map(normalize_image)
        .collect();
    let containers = images.len() as i64;
    let total_nodes = cache.nodes.len().max(1) as f64;
    nodes
        .iter()
        .map(|n| {
            if n.images.is_empty() {
                return 0;
            }
            let sum: i64 = images
                .iter()
                .filter_map(|img| {
                    let size = *n.images.get(img)?;
                    let spread = cache.image_nodes.get(img).copied().unwrap_or(0) as f64 / total_nodes;
                    Some((size as f64 * spread) as i64)
                })
                .sum();
            priority(sum, containers)
        })
        .collect()
}

/// Upstream's `calculatePriority`: the summed size clamped between 23 MB and 1000 MB per container.
fn priority(sum: i64, containers: i64) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1);
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::node;
    use crate::podinfo::tests::pod;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn nodes_with_large_images_score_higher() {
        let mut cache = Cache::default();
        let with = node(
            "with",
            json!({}),
            json!({"status": {"images": [{"names": ["docker.io/library/big:1"], "sizeBytes": 500 * MB}]}}),
        );
        let without = node("without", json!({}), json!({}));
        cache.upsert_node(Arc::new(with.node.as_ref().clone()));
        cache.upsert_node(Arc::new(without.node.as_ref().clone()));
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "big:1"}]}}));
        let nodes: Vec<&NodeInfo> = cache.nodes.iter().collect();
        let s = score(&p, &cache, &nodes);
        // 500 MB on 1 of 2 nodes: 250 MB effective.
        assert_eq!(s, vec![100 * (250 * MB - MIN_THRESHOLD) / (1000 * MB - MIN_THRESHOLD), 0]);
    }
}
