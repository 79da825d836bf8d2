//! An in-memory backend with full revision history: for tests, and as the model the other backends are checked against.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream, check_value_size,
};

/// A [`Store`] that keeps everything in process memory and loses it on exit.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Result<Event>>,
}

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    /// Every version of every key still retained; `None` marks a deletion.
    versions: BTreeMap<String, Vec<(Revision, Option<KeyValue>)>>,
    /// Every change after `compacted`, in revision order.
    log: Vec<Event>,
    watchers: Vec<Watcher>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (each write is applied at the end), so go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn current(&self, key: &str) -> Option<&KeyValue> {
        self.versions.get(key).and_then(|v| v.last()).and_then(|(_, kv)| kv.as_ref())
    }

    fn commit(&mut self, event: Event) {
        self.revision = event.revision();
        let stored = match event.kind {
            EventKind::Deleted => None,
            _ => Some(event.kv.clone()),
        };
        self.versions.entry(event.kv.key.clone()).or_default().push((self.revision, stored));
        self.watchers.retain(|w| !event.kv.key.starts_with(&w.prefix) || w.tx.send(Ok(event.clone())).is_ok());
        self.log.push(event);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().current(key).cloned())
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let st = self.lock();
        let at = opts.revision.filter(|r| *r > 0).unwrap_or(st.revision);
        if at < st.compacted {
            return Err(Error::Expired { requested: at, compacted: st.compacted });
        }
        if at > st.revision {
            return Err(Error::FutureRevision { requested: at, current: st.revision });
        }
        let start = opts.start.as_deref().filter(|s| *s > prefix).unwrap_or(prefix).to_owned();
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut more = false;
        for (key, versions) in st.versions.range(start..) {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(kv) = versions.iter().rev().find(|(r, _)| *r <= at).and_then(|(_, kv)| kv.as_ref()) else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(kv.clone());
        }
        Ok(ListResult { items, revision: at, more })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let mut st = self.lock();
        if st.current(key).is_some() {
            return Err(Error::AlreadyExists { key: key.to_owned() });
        }
        let rev = st.revision + 1;
        let kv = KeyValue { key: key.to_owned(), value, create_revision: rev, mod_revision: rev };
        st.commit(Event { kind: EventKind::Added, kv: kv.clone(), prev: None });
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let mut st = self.lock();
        let prev = st.current(key).cloned().ok_or_else(|| Error::NotFound { key: key.to_owned() })?;
        if prev.mod_revision != expected {
            return Err(Error::Conflict { key: key.to_owned(), expected, actual: prev.mod_revision });
        }
        let rev = st.revision + 1;
        let kv = KeyValue { key: key.to_owned(), value, create_revision: prev.create_revision, mod_revision: rev };
        st.commit(Event { kind: EventKind::Modified, kv: kv.clone(), prev: Some(prev) });
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let mut st = self.lock();
        let prev = st.current(key).cloned().ok_or_else(|| Error::NotFound { key: key.to_owned() })?;
        if let Some(expected) = expected
            && prev.mod_revision != expected
        {
            return Err(Error::Conflict { key: key.to_owned(), expected, actual: prev.mod_revision });
        }
        let rev = st.revision + 1;
        let kv = KeyValue { mod_revision: rev, ..prev.clone() };
        st.commit(Event { kind: EventKind::Deleted, kv, prev: Some(prev.clone()) });
        Ok((prev, rev))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.lock().compacted)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let mut st = self.lock();
        if after < st.compacted {
            return Err(Error::Expired { requested: after, compacted: st.compacted });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for ev in st.log.iter().filter(|e| e.revision() > after && e.kv.key.starts_with(prefix)) {
            // The receiver is held right here, so this send cannot fail.
            let _ = tx.send(Ok(ev.clone()));
        }
        st.watchers.push(Watcher { prefix: prefix.to_owned(), tx });
        Ok(tokio_stream_from(rx))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut st = self.lock();
        if revision <= st.compacted {
            return Err(Error::Expired { requested: revision, compacted: st.compacted });
        }
        if revision > st.revision {
            return Err(Error::FutureRevision { requested: revision, current: st.revision });
        }
        st.compacted = revision;
        st.log.retain(|e| e.revision() > revision);
        st.versions.retain(|_, versions| {
            // Keep the last version at or before the compaction point (unless it is a deletion) and all later ones.
            let keep_from = versions.iter().rposition(|(r, _)| *r <= revision).unwrap_or(0);
            versions.drain(..keep_from);
            if matches!(versions.first(), Some((r, None)) if *r <= revision) {
                versions.remove(0);
            }
            !versions.is_empty()
        });
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

fn tokio_stream_from(mut rx: mpsc::UnboundedReceiver<Result<Event>>) -> WatchStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
