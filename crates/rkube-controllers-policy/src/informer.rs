//! A cached watch of one kind (client-go's informer): a kube-runtime reflector whose events are handed to
//! a callback, so that controllers enqueue the keys an object change concerns.

use std::fmt::Debug;
use std::future::Future;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

/// What happened to the cache.
pub(crate) enum Change<'a, K> {
    /// An object was added, changed or deleted.
    Object(&'a K),
    /// A (re)list completed: every object may have changed.
    Resynced,
}

/// A cache of `api`'s objects and the future that keeps it filled, calling `on` for every change.
pub(crate) fn informer<K, F>(api: Api<K>, on: F) -> (Store<K>, impl Future<Output = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Change<'_, K>) + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let run = async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff().reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => on(Change::Object(&o)),
                Ok(watcher::Event::InitDone) => on(Change::Resynced),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "watch failed; retrying"),
            }
        }
    };
    (reader, run)
}
