//! Batching of pod-driven syncs (upstream's `--endpoint-updates-batch-period`): the first change of a
//! service's pods starts a timer, changes during the period ride along, and the service is queued once when
//! it fires. A change after that starts a new period, so no update is lost.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rkube_client::queue::WorkQueue;

/// A work queue with a delayed, deduplicated `add_batched`.
pub(crate) struct Batched<K> {
    queue: Arc<WorkQueue<K>>,
    period: Duration,
    waiting: Arc<Mutex<HashSet<K>>>,
}

impl<K: Eq + Hash + Clone + Send + 'static> Batched<K> {
    /// Batches onto `queue` with `period`.
    pub(crate) fn new(queue: Arc<WorkQueue<K>>, period: Duration) -> Self {
        Batched { queue, period, waiting: Arc::new(Mutex::new(HashSet::new())) }
    }

    /// The queue itself, for immediate adds and workers.
    pub(crate) fn queue(&self) -> &Arc<WorkQueue<K>> {
        &self.queue
    }

    /// Queues `key` at the end of the current batch period (starting one if none is running).
    pub(crate) fn add_batched(&self, key: K) {
        if self.period.is_zero() {
            return self.queue.add(key);
        }
        if !self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return;
        }
        let (queue, waiting, period) = (Arc::downgrade(&self.queue), self.waiting.clone(), self.period);
        tokio::spawn(async move {
            tokio::time::sleep(period).await;
            waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            if let Some(q) = queue.upgrade() {
                q.add(key);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_queued_once_and_later_changes_again() {
        let q = WorkQueue::<u32>::new(Duration::from_millis(1), Duration::from_millis(10));
        let b = Batched::new(q.clone(), Duration::from_millis(50));
        for _ in 0..20 {
            b.add_batched(1);
        }
        let got = tokio::time::timeout(Duration::from_secs(5), q.get()).await.ok().flatten();
        assert_eq!(got, Some(1));
        q.done(&1);
        // The burst gave one sync: nothing more comes.
        assert!(tokio::time::timeout(Duration::from_millis(150), q.get()).await.is_err());
        b.add_batched(1);
        let got = tokio::time::timeout(Duration::from_secs(5), q.get()).await.ok().flatten();
        assert_eq!(got, Some(1));
    }
}
