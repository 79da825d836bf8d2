//! Watch plumbing shared by both controllers: a reflector store per kind, fed by one watch, whose every
//! change is handed to a callback with the object before and after (so a handler can enqueue both the old
//! and the new owner), and a "listed again" signal after every (re)list so handlers can resync.

use std::fmt::Debug;
use std::future::Future;

use futures::StreamExt;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

/// What a watch reports to its handler.
pub(crate) enum Change<'a, K> {
    /// An object appeared, changed or went: `old` is the cached copy before, `new` the copy after
    /// (`None` when deleted).
    Object {
        /// The object before the change, if it was known.
        old: Option<&'a K>,
        /// The object after the change; `None` for a deletion.
        new: Option<&'a K>,
    },
    /// A (re)list finished: the cache is complete again, and deletions during a watch gap were not reported.
    Relisted,
}

/// A cache of `K` and the future that keeps it current; `on` sees every change after the cache applied it.
pub(crate) fn informer<K, F>(api: Api<K>, config: watcher::Config, on: F) -> (Store<K>, impl Future<Output = ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Change<'_, K>) + Send + 'static,
{
    let (reader, mut writer) = reflector::store();
    let cache = reader.clone();
    let kind = K::kind(&());
    let fut = watcher::watcher(api, config).default_backoff().for_each(move |ev| {
        match ev {
            Ok(ev) => {
                let old = match &ev {
                    Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => cache.get(&ObjectRef::from_obj(o)),
                    _ => None,
                };
                writer.apply_watcher_event(&ev);
                match &ev {
                    Event::Apply(o) | Event::InitApply(o) => on(Change::Object { old: old.as_deref(), new: Some(o) }),
                    Event::Delete(o) => on(Change::Object { old: Some(old.as_deref().unwrap_or(o)), new: None }),
                    Event::InitDone => on(Change::Relisted),
                    Event::Init => {}
                }
            }
            Err(e) => tracing::debug!(kind = %kind, error = %e, "watch"),
        }
        futures::future::ready(())
    });
    (reader, fut)
}
