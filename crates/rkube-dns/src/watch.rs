//! Feeding the [`Index`] from watches of every Service and EndpointSlice (relists replace a kind atomically).

use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::index::Index;

/// How one kind updates the index.
struct Ops<K> {
    apply: fn(&mut Index, &K),
    delete: fn(&mut Index, &K),
    replace: fn(&mut Index, &[K]),
}

/// Watches Services and EndpointSlices forever; `synced` counts the kinds whose first list is in the index.
pub(crate) async fn run(client: Client, index: Arc<RwLock<Index>>, synced: watch::Sender<usize>) {
    let services = follow(
        Api::<Service>::all(client.clone()),
        index.clone(),
        Ops { apply: Index::apply_service, delete: Index::delete_service, replace: Index::replace_services },
        synced.clone(),
    );
    let slices = follow(
        Api::<EndpointSlice>::all(client),
        index,
        Ops { apply: Index::apply_slice, delete: Index::delete_slice, replace: Index::replace_slices },
        synced,
    );
    tokio::join!(services, slices);
}

async fn follow<K>(api: Api<K>, index: Arc<RwLock<Index>>, ops: Ops<K>, synced: watch::Sender<usize>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    // The watcher retries with backoff on its own; an error item is only logged.
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut buffer = Vec::new();
    let mut first = true;
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cluster DNS watch failed; retrying");
                continue;
            }
        };
        let mut idx = index.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Init => buffer.clear(),
            Event::InitApply(o) => buffer.push(o),
            Event::InitDone => {
                (ops.replace)(&mut idx, &buffer);
                buffer.clear();
                if first {
                    first = false;
                    synced.send_modify(|n| *n += 1);
                }
            }
            Event::Apply(o) => (ops.apply)(&mut idx, &o),
            Event::Delete(o) => (ops.delete)(&mut idx, &o),
        }
    }
}
