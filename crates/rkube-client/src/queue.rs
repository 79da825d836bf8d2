//! A work queue with client-go's guarantees: a key waits at most once, a key is never handed to two
//! workers at the same time (re-adds while it is processed run once more afterwards), and failed keys
//! come back after a per-key exponential backoff.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::backoff::KeyedBackoff;

#[derive(Debug)]
struct State<K> {
    queue: VecDeque<K>,
    /// Keys that need processing (queued, or re-added while being processed).
    dirty: HashSet<K>,
    processing: HashSet<K>,
    shut: bool,
}

/// A deduplicating work queue shared by a controller's event handlers and workers.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    backoff: KeyedBackoff<K>,
}

impl<K: Eq + Hash + Clone + Send + 'static> WorkQueue<K> {
    /// A queue whose retries back off from `base` to `max`.
    pub fn new(base: Duration, max: Duration) -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                shut: false,
            }),
            notify: Notify::new(),
            backoff: KeyedBackoff::new(base, max),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.shut || !s.dirty.insert(key.clone()) {
            return;
        }
        if s.processing.contains(&key) {
            // `done` queues it again.
            return;
        }
        s.queue.push_back(key);
        drop(s);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let q = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = q.upgrade() {
                q.add(key);
            }
        });
    }

    /// Queues `key` again after its backoff (one more failure).
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let delay = self.backoff.next(&key);
        self.add_after(key, delay);
    }

    /// Forgets `key`'s failures.
    pub fn forget(&self, key: &K) {
        self.backoff.reset(key);
    }

    /// The next key to process; `None` once the queue is shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.shut {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    if !s.queue.is_empty() {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) && !s.shut {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Stops the queue: `get` returns `None` from now on.
    pub fn shutdown(&self) {
        self.lock().shut = true;
        self.notify.notify_waiters();
    }

    /// How many keys wait (for tests).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::<u32>::new(Duration::from_millis(1), Duration::from_millis(10));
        q.add(1);
        q.add(1);
        q.add(2);
        assert_eq!(q.waiting(), 2);
        let k = q.get().await;
        assert_eq!(k, Some(1));
        q.add(1); // while processing: not handed out twice
        assert_eq!(q.get().await, Some(2));
        assert_eq!(q.waiting(), 0);
        q.done(&1);
        assert_eq!(q.get().await, Some(1));
        q.done(&1);
        q.done(&2);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn rate_limited_keys_come_back_and_shutdown_ends_get() {
        let q = WorkQueue::<u32>::new(Duration::from_millis(5), Duration::from_millis(10));
        q.add_rate_limited(7);
        let got = tokio::time::timeout(Duration::from_secs(5), q.get()).await;
        assert_eq!(got.ok().flatten(), Some(7));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shutdown();
        let r = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(r, Ok(Ok(None))));
    }
}
