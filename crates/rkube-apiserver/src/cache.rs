//! The watch cache: one store watch over the whole key prefix keeps every object in memory, parsed,
//! so lists and watches are served without touching the store (upstream's cacher, shared by all resources).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use handover::Handover;
use rkube_store::{EventKind, ListOptions, Revision, Store};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// Live events buffered per resource for watchers that have not taken them yet; one further behind catches
/// up from the history.
const LIVE_BUFFER: usize = 4096;

/// One object as the cache holds it: parsed, with `metadata.resourceVersion` set.
#[derive(Debug)]
pub struct CachedObject {
    /// The object.
    pub value: Value,
    /// Its last modification revision.
    pub revision: Revision,
    /// The object's JSON, made once on first use: lists of thousands of objects are then
    /// concatenations, not re-serializations (cached objects never change; a new version is a new one).
    json: std::sync::OnceLock<bytes::Bytes>,
    /// The bytes this server stored the object as (its JSON without resourceVersion), until its JSON is made
    /// from them.
    stored: Mutex<Option<Vec<u8>>>,
}

impl CachedObject {
    /// A cached object.
    pub fn new(value: Value, revision: Revision) -> Self {
        CachedObject { value, revision, json: std::sync::OnceLock::new(), stored: Mutex::new(None) }
    }

    /// A cached object this server wrote as `stored` (`value` is exactly those bytes parsed, with its
    /// resourceVersion): its JSON is those bytes with the resourceVersion added, not a new serialization.
    pub(crate) fn from_stored(value: Value, revision: Revision, stored: Vec<u8>) -> Self {
        CachedObject { value, revision, json: std::sync::OnceLock::new(), stored: Mutex::new(Some(stored)) }
    }

    /// The object as JSON bytes.
    pub fn json(&self) -> &bytes::Bytes {
        self.json.get_or_init(|| {
            let stored = self.stored.lock().unwrap_or_else(|e| e.into_inner()).take();
            let rv = self.value.pointer("/metadata/resourceVersion").and_then(Value::as_str);
            let made = stored.zip(rv).and_then(|(s, rv)| rawjson::with_resource_version(&s, rv));
            bytes::Bytes::from(made.unwrap_or_else(|| serde_json::to_vec(&self.value).unwrap_or_default()))
        })
    }
}

/// One change, as watchers receive it.
#[derive(Debug)]
pub struct CacheEvent {
    /// ADDED, MODIFIED or DELETED.
    pub kind: EventKind,
    /// The store key.
    pub key: String,
    /// The object after the change (for DELETED: the last state, with the deletion's resourceVersion).
    pub object: Arc<CachedObject>,
    /// The object before the change.
    pub prev: Option<Arc<CachedObject>>,
    /// The revision of the change.
    pub revision: Revision,
}

/// What the cache keeps of one resource segment (`pods`, `leases`, ...) besides its objects.
struct Segment {
    /// The revision of the segment's last change.
    changed: Revision,
    /// The segment's recent events, oldest first.
    history: VecDeque<Arc<CacheEvent>>,
    /// Every change to the segment after this revision is in `history`.
    start: Revision,
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    segments: std::collections::HashMap<String, Segment>,
    /// Every change up to this revision has been applied.
    revision: Revision,
    /// The revision of the last (re)load: a segment without changes since has lost no history after it.
    loaded: Revision,
}

impl State {
    /// Whether every change of `segment` after `revision` is still kept.
    fn covers(&self, segment: &str, revision: Revision) -> bool {
        revision >= self.revision || revision >= self.segments.get(segment).map_or(self.loaded, |s| s.start)
    }

    /// The kept changes of `segment` after `revision`, or `None` if some of them are no longer kept.
    fn replay(&self, segment: &str, revision: Revision) -> Option<Vec<Arc<CacheEvent>>> {
        if !self.covers(segment, revision) {
            return None;
        }
        let Some(seg) = self.segments.get(segment) else { return Some(Vec::new()) };
        // The history is in revision order.
        let from = seg.history.partition_point(|e| e.revision <= revision);
        Some(seg.history.range(from..).cloned().collect())
    }
}

/// The cache itself. Cheap to share.
pub struct Cache {
    prefix: String,
    /// How many recent events are kept per resource for watches that start slightly in the past (or fell behind
    /// the live events): per resource as upstream's cacher, so a burst of pod writes does not push the Leases'
    /// or Services' history out.
    history: usize,
    state: RwLock<State>,
    /// Live events per resource segment: a pod write wakes only pod watchers, not the hundred watchers of
    /// leases, events and other kinds (changed under the state lock, so subscribing under it loses nothing).
    events: std::sync::Mutex<std::collections::HashMap<String, broadcast::Sender<Arc<CacheEvent>>>>,
    progress: watch::Sender<Revision>,
    /// Bumped when the cache reloads from a fresh list: watchers started before must end (their next
    /// events could be missing), as upstream's cacher ends its watchers on re-initialisation.
    resets: watch::Sender<u64>,
    /// Objects this server writes, parsed already (see `handover.rs`).
    handover: Handover,
}

/// An object this server is writing, left with the cache (see [`Cache::pend`]); dropped unfinished (the write
/// failed or its request was abandoned), it is forgotten.
pub struct Pending<'a> {
    cache: &'a Cache,
    key: String,
    ticket: u64,
    done: bool,
}

impl Pending<'_> {
    /// The write committed at `revision`: the object as stored, shared with the cache (`None` cannot happen:
    /// only this call or the drop takes the ticket).
    pub fn written(mut self, revision: Revision) -> Option<Arc<CachedObject>> {
        self.done = true;
        self.cache.handover.written(&self.key, self.ticket, revision)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.handover.forget(&self.key, self.ticket);
        }
    }
}

/// Why a watch could not start from the cache.
pub enum WatchStart {
    /// Replay these events, then follow the receiver.
    Ok(Vec<Arc<CacheEvent>>, broadcast::Receiver<Arc<CacheEvent>>),
    /// The revision is older than the cache's history: the caller falls back to the store.
    TooOld,
}

/// Sets `metadata.resourceVersion` on a parsed object.
pub fn with_revision(mut value: Value, revision: Revision) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".to_owned(), Value::String(revision.to_string()));
    }
    value
}

impl Cache {
    /// Loads every object under `prefix` and keeps following the store until `shutdown`.
    /// Returns once the initial load is done.
    pub async fn start(
        store: Arc<dyn Store>,
        prefix: String,
        history: usize,
        shutdown: watch::Receiver<bool>,
    ) -> rkube_store::Result<Arc<Cache>> {
        let (progress, _) = watch::channel(0);
        let (resets, _) = watch::channel(0);
        let cache = Arc::new(Cache {
            prefix: prefix.clone(),
            history: history.max(1),
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                segments: Default::default(),
                revision: 0,
                loaded: 0,
            }),
            events: Default::default(),
            progress,
            resets,
            handover: Handover::default(),
        });
        let rev = cache.load(&store, &prefix).await?;
        tokio::spawn(follow(cache.clone(), store, prefix, rev, shutdown));
        Ok(cache)
    }

    async fn load(&self, store: &Arc<dyn Store>, prefix: &str) -> rkube_store::Result<Revision> {
        let mut objects = BTreeMap::new();
        let mut opts = ListOptions { limit: Some(5000), ..Default::default() };
        let revision = loop {
            let page = store.list(prefix, opts.clone()).await?;
            for kv in &page.items {
                if let Some(obj) = parse(&kv.key, &kv.value, kv.mod_revision) {
                    objects.insert(kv.key.clone(), Arc::new(obj));
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => {
                    opts = ListOptions {
                        revision: Some(page.revision),
                        limit: Some(5000),
                        start: Some(format!("{}\0", last.key)),
                    };
                }
                _ => break page.revision,
            }
        };
        let mut st = self.write();
        st.objects = objects;
        // After a reload every segment counts as changed, and no history before it is kept.
        for seg in st.segments.values_mut() {
            *seg = Segment { changed: revision, history: VecDeque::new(), start: revision };
        }
        st.revision = revision;
        st.loaded = revision;
        drop(st);
        self.handover.reloaded(revision);
        self.resets.send_modify(|n| *n += 1);
        self.progress.send_replace(revision);
        Ok(revision)
    }

    /// Leaves `value` with the cache while it is stored under `key` as `bytes` (its JSON without the
    /// resourceVersion): when the store's event for it arrives, the cache keeps this object instead of parsing
    /// the stored bytes again, and its JSON, once serialized for the writer's answer, is the one watchers send.
    pub fn pend(&self, key: &str, bytes: &[u8], value: Value) -> Pending<'_> {
        let ticket = self.handover.pend(key, bytes, value);
        Pending { cache: self, key: key.to_owned(), ticket, done: false }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The resource segment of a key: what follows the prefix up to the next `/`.
    fn segment_of(&self, key: &str) -> String {
        key.strip_prefix(&self.prefix).and_then(|rest| rest.split('/').next()).unwrap_or_default().to_owned()
    }

    /// The revision of the last change under `<prefix>/<segment>/` (0 if none since start).
    pub fn last_change(&self, segment: &str) -> Revision {
        self.read().segments.get(segment).map_or(0, |s| s.changed)
    }

    /// A receiver that changes whenever the cache reloads (watchers end then).
    pub fn resets(&self) -> watch::Receiver<u64> {
        self.resets.subscribe()
    }

    /// The revision up to which the cache is current.
    pub fn revision(&self) -> Revision {
        self.read().revision
    }

    /// Waits until the cache has applied every change up to `revision`; false on timeout.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await.is_ok_and(|r| r.is_ok())
    }

    /// The objects under `prefix` (sorted by key) and the revision they were read at.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<CachedObject>>, Revision) {
        let st = self.read();
        let items = st
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.revision)
    }

    /// Whether any object's key starts with `prefix`.
    pub fn holds_any(&self, prefix: &str) -> bool {
        self.read()
            .objects
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).cloned()
    }

    /// A receiver of the live events of the resource segment `prefix` lies in (call under the state lock).
    fn subscribe(&self, prefix: &str) -> broadcast::Receiver<Arc<CacheEvent>> {
        let segment = self.segment_of(prefix);
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.entry(segment).or_insert_with(|| broadcast::channel(LIVE_BUFFER).0).subscribe()
    }

    /// Starts a watch of `prefix` after `revision`: the retained events after it of the resource `prefix` lies
    /// in (the caller filters by the rest of the prefix), then its live ones.
    pub fn watch_from(&self, prefix: &str, revision: Revision) -> WatchStart {
        let st = self.read();
        match st.replay(&self.segment_of(prefix), revision) {
            // Subscribing under the read lock: no event can be applied between the replay and the subscription.
            Some(replay) => WatchStart::Ok(replay, self.subscribe(prefix)),
            None => WatchStart::TooOld,
        }
    }

    /// Whether a watch of `prefix` after `revision` could start from the cache (see [`Cache::watch_from`], which
    /// decides the same without a separate check).
    #[cfg(test)]
    pub fn covers(&self, prefix: &str, revision: Revision) -> bool {
        self.read().covers(&self.segment_of(prefix), revision)
    }

    /// The current state as synthetic ADDED events (for watches without a resourceVersion) and a live receiver.
    pub fn snapshot_and_subscribe(
        &self,
        prefix: &str,
    ) -> (Vec<Arc<CachedObject>>, Revision, broadcast::Receiver<Arc<CacheEvent>>) {
        let st = self.read();
        let rx = self.subscribe(prefix);
        let items = st
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.revision, rx)
    }

    fn apply(&self, ev: rkube_store::Event) {
        let revision = ev.revision();
        let bytes = (ev.kind != EventKind::Deleted).then_some(ev.kv.value.as_slice());
        let object = match self.handover.applying(&ev.kv.key, revision, bytes) {
            Some(object) => object,
            None => match parse(&ev.kv.key, &ev.kv.value, revision) {
                Some(object) => Arc::new(object),
                None => return,
            },
        };
        let segment = self.segment_of(&ev.kv.key);
        let mut st = self.write();
        let sender = self.events.lock().unwrap_or_else(|e| e.into_inner()).get(&segment).cloned();
        let prev = match ev.kind {
            EventKind::Deleted => st.objects.remove(&ev.kv.key),
            _ => st.objects.insert(ev.kv.key.clone(), object.clone()),
        };
        let event = Arc::new(CacheEvent { kind: ev.kind, key: ev.kv.key, object, prev, revision });
        let loaded = st.loaded;
        let seg = st.segments.entry(segment).or_insert_with(|| Segment {
            changed: revision,
            history: VecDeque::new(),
            start: loaded,
        });
        seg.changed = revision;
        seg.history.push_back(event.clone());
        if seg.history.len() > self.history
            && let Some(dropped) = seg.history.pop_front()
        {
            seg.start = dropped.revision;
        }
        st.revision = revision;
        // No receivers is fine: nobody is watching (and nothing is kept then).
        if let Some(sender) = sender {
            let _ = sender.send(event);
        }
        drop(st);
        self.progress.send_replace(revision);
    }
}

fn parse(key: &str, bytes: &[u8], revision: Revision) -> Option<CachedObject> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Some(CachedObject::new(with_revision(v, revision), revision)),
        Err(e) => {
            // Upstream logs and skips undecodable objects too; one bad value must not stop the cache.
            tracing::error!(key, error = %e, "stored value is not JSON; skipping it");
            None
        }
    }
}

async fn follow(
    cache: Arc<Cache>,
    store: Arc<dyn Store>,
    prefix: String,
    mut rev: Revision,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut stream = match store.watch(&prefix, rev).await {
            Ok(s) => s,
            Err(rkube_store::Error::Expired { .. }) => match cache.load(&store, &prefix).await {
                Ok(r) => {
                    tracing::warn!(revision = r, "watch cache fell behind compaction; reloaded");
                    rev = r;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "watch cache reload failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "watch cache cannot watch the store; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                item = stream.next() => match item {
                    Some(Ok(ev)) => {
                        rev = ev.revision();
                        cache.apply(ev);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, revision = rev, "store watch ended; resuming");
                        break;
                    }
                    None => break,
                },
            }
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod handover;
mod rawjson;
#[cfg(test)]
mod tests;
