//! Periodic compaction for backends that do not compact themselves (etcd), as kube-apiserver's
//! `--etcd-compaction-interval` does: each round compacts to the revision seen one round earlier,
//! so watchers always have at least one interval of history to resume from.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{Error, Store};

/// Runs until `shutdown` turns true. Errors are logged and retried next round: a missed compaction only costs space.
pub async fn run(store: Arc<dyn Store>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut previous = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let current = match store.current_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(store = %store.describe(), error = %e, "compactor could not read the revision");
                continue;
            }
        };
        if let Some(target) = previous.filter(|p| *p > 0) {
            match store.compact(target).await {
                Ok(()) => tracing::debug!(revision = target, "compacted"),
                // Another server (or an earlier run) compacted further already: nothing to do.
                Err(Error::Expired { .. }) => {}
                Err(e) => tracing::warn!(store = %store.describe(), error = %e, "compaction failed"),
            }
        }
        previous = Some(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn compacts_to_the_previous_rounds_revision() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(store.clone(), Duration::from_secs(60), rx));
        let first = store.create("/k/a", b"1".to_vec()).await.expect("create");
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(store.compacted_revision().await.expect("rev"), 0, "the first round only remembers");
        store.update("/k/a", b"2".to_vec(), first.mod_revision).await.expect("update");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(store.compacted_revision().await.expect("rev"), first.mod_revision);
        tx.send(true).expect("send");
        task.await.expect("join");
    }
}
