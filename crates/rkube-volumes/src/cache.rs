//! A per-object TTL cache of ConfigMaps, Secrets and the Node (upstream's `Cache` change-detection strategy).
//! Chosen over per-object watches: setup runs at every pod sync (~10 s), so one GET per object per TTL is
//! cheap, needs no watch per referenced object, and works under the node authorizer's get-only rights.
//! A NotFound is cached like an object (a missing ConfigMap is asked for once per TTL, not per sync); a pod
//! seen for the first time reads fresh (upstream invalidates on `RegisterPod`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::api::Api;

type Key = (String, String);

struct Entry<K> {
    at: Instant,
    /// `None`: the object did not exist.
    value: Option<Arc<K>>,
}

/// One kind's cache.
pub(crate) struct ObjectCache<K> {
    ttl: Duration,
    entries: Mutex<HashMap<Key, Entry<K>>>,
}

impl<K> ObjectCache<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    pub(crate) fn new(ttl: Duration) -> Self {
        ObjectCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry<K>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object (`None` when it does not exist), from the cache when younger than the TTL and not `fresh`.
    pub(crate) async fn get(
        &self,
        api: Api<K>,
        namespace: &str,
        name: &str,
        fresh: bool,
    ) -> kube::Result<Option<Arc<K>>> {
        let key = (namespace.to_owned(), name.to_owned());
        if !fresh && let Some(e) = self.lock().get(&key).filter(|e| e.at.elapsed() < self.ttl) {
            return Ok(e.value.clone());
        }
        let value = match api.get(name).await {
            Ok(o) => Some(Arc::new(o)),
            Err(e) if rkube_client::api::is_not_found(&e) => None,
            Err(e) => return Err(e),
        };
        let mut entries = self.lock();
        // Entries nobody asked for in a while belong to pods that are gone.
        let keep = self.ttl.max(Duration::from_secs(10)) * 30;
        entries.retain(|_, e| e.at.elapsed() < keep);
        entries.insert(key, Entry { at: Instant::now(), value: value.clone() });
        Ok(value)
    }
}
