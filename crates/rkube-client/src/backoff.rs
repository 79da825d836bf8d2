//! Per-key exponential backoff for retries, as client-go's item rate limiter: each failure of a key
//! doubles its delay up to a cap, and a success forgets the key.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

/// Retry delays per key.
#[derive(Debug)]
pub struct KeyedBackoff<K> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash + Clone> KeyedBackoff<K> {
    /// Delays start at `base` and double per failure up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        KeyedBackoff { base, max, failures: Mutex::new(HashMap::new()) }
    }

    /// Records one more failure of `key` and returns how long to wait before the next try.
    pub fn next(&self, key: &K) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.clone()).or_insert(0);
        let delay = self.base.saturating_mul(1u32 << (*n).min(20)).min(self.max);
        *n = n.saturating_add(1);
        delay
    }

    /// Forgets `key`'s failures (it succeeded).
    pub fn reset(&self, key: &K) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let b = KeyedBackoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let k = "a".to_owned();
        let got: Vec<u128> = (0..6).map(|_| b.next(&k).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.next(&"b".to_owned()), Duration::from_millis(100));
        b.reset(&k);
        assert_eq!(b.next(&k), Duration::from_millis(100));
    }
}
