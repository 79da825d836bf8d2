//! Watch: a chunked stream of `{"type":...,"object":...}` lines, started from the watch cache
//! (or from the store for revisions older than the cache's history), with label and field filtering,
//! bookmarks, timeouts, and `410 Expired` as an ERROR event, as upstream streams it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode};
use rkube_apimachinery::ApiError;
use rkube_store::EventKind;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::cache::{CacheEvent, WatchStart, with_revision};
use crate::codec::Output;
use crate::meta;
use crate::query::Query;
use crate::registry::ListQuery;
use crate::resource::ResourceDef;
use crate::state::AppState;

/// How often a bookmark is sent to clients that allow them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// The longest a watch lasts without `timeoutSeconds` (upstream picks 30–60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    prefix: String,
    name: Option<String>,
    query: ListQuery,
    def: Arc<ResourceDef>,
}

impl Filter {
    fn matches(&self, key: &str, obj: &Value) -> bool {
        key.starts_with(&self.prefix) && self.matches_object(obj)
    }

    /// Name and selectors only (for objects already known to be under the prefix).
    fn matches_object(&self, obj: &Value) -> bool {
        if let Some(n) = &self.name
            && meta::meta_str(obj, "name") != Some(n.as_str())
        {
            return false;
        }
        let strategy = crate::kinds::strategy(&self.def);
        // Most watches select nothing: no label map is built for them (this runs per event and watcher).
        (self.query.labels.is_empty() || self.query.labels.matches(&meta::labels(obj)))
            && (self.query.fields.is_empty() || self.query.fields.matches(|f| strategy.field_value(obj, f)))
    }
}

struct Encoder {
    def: Arc<ResourceDef>,
    out: Output,
    include_object: String,
    columns_sent: bool,
}

impl Encoder {
    /// A watch event of a cached object: for JSON, its JSON serialized once and shared by every watcher.
    fn cached(&mut self, ty: &str, obj: &crate::cache::CachedObject) -> Bytes {
        if self.out == Output::Table {
            return self.event(ty, &obj.value);
        }
        let json = obj.json();
        let mut line = Vec::with_capacity(json.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(ty.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(json);
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
    }

    fn event(&mut self, ty: &str, obj: &Value) -> Bytes {
        let object = if self.out == Output::Table && ty != "BOOKMARK" && ty != "ERROR" {
            let meta =
                json!({ "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")) });
            let t = crate::printers::table(
                &self.def,
                std::slice::from_ref(obj),
                meta,
                &self.include_object,
                !self.columns_sent,
            );
            self.columns_sent = true;
            t
        } else {
            obj.clone()
        };
        let mut line = serde_json::to_vec(&json!({ "type": ty, "object": object })).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// Starts a watch and returns the streaming response.
pub(crate) async fn serve(
    app: Arc<AppState>,
    def: Arc<ResourceDef>,
    ns: Option<String>,
    name: Option<String>,
    query: &Query,
    out: Output,
) -> Result<Response, ApiError> {
    let strategy = crate::kinds::strategy(&def);
    let lq = query.list()?;
    lq.fields.check_supported(&strategy.selectable_fields()).map_err(|e| ApiError::bad_request(e.0))?;
    let filter = Filter { prefix: app.registry.prefix(&def, ns.as_deref()), name, query: lq, def: def.clone() };
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let from = match query.get("resourceVersion").filter(|s| !s.is_empty() && *s != "0") {
        Some(s) => {
            Some(s.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))?)
        }
        None => None,
    };
    let enc = Encoder {
        def: def.clone(),
        out,
        include_object: query.get("includeObject").unwrap_or("Metadata").to_owned(),
        columns_sent: false,
    };

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let started = tokio::time::timeout(timeout, run(app, filter, from, bookmarks, enc, tx)).await;
        // A timeout ends the watch as upstream does: the client starts a new one.
        let _ = started;
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

/// Where events come from: the cache (replay, then live), or the store for older revisions.
enum Source {
    Cache(std::vec::IntoIter<Arc<CacheEvent>>, broadcast::Receiver<Arc<CacheEvent>>),
    Store(rkube_store::WatchStream, #[allow(dead_code, reason = "held for its Drop")] StoreWatch),
}

/// Counts a watch in `rkube_apiserver_store_watches` while it reads from the store.
struct StoreWatch(Arc<AppState>);

impl StoreWatch {
    fn new(app: &Arc<AppState>) -> Self {
        app.metrics.store_watches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        app.metrics.store_watches_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        StoreWatch(app.clone())
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        self.0.metrics.store_watches.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn to_cache_event(ev: rkube_store::Event) -> Option<Arc<CacheEvent>> {
    let parse = |kv: &rkube_store::KeyValue, rev: i64| {
        serde_json::from_slice::<Value>(&kv.value)
            .ok()
            .map(|v| Arc::new(crate::cache::CachedObject::new(with_revision(v, rev), rev)))
    };
    let rev = ev.revision();
    let object = parse(&ev.kv, rev)?;
    let prev = ev.prev.as_ref().and_then(|p| parse(p, p.mod_revision));
    Some(Arc::new(CacheEvent { kind: ev.kind, key: ev.kv.key.clone(), object, prev, revision: rev }))
}

async fn run(
    app: Arc<AppState>,
    filter: Filter,
    from: Option<i64>,
    bookmarks: bool,
    mut enc: Encoder,
    tx: mpsc::Sender<Bytes>,
) {
    let cache = app.registry.cache().clone();
    let mut resets = cache.resets();
    let mut last_rv;
    let mut source = match from {
        None => {
            // No resourceVersion: the current state as synthetic ADDED events, then what follows.
            let (objects, rev, rx) = cache.snapshot_and_subscribe(&filter.prefix);
            for o in objects.iter().filter(|o| filter.matches_object(&o.value)) {
                if tx.send(enc.cached("ADDED", o)).await.is_err() {
                    return;
                }
            }
            last_rv = rev;
            Source::Cache(Vec::new().into_iter(), rx)
        }
        Some(rv) => {
            last_rv = rv;
            // History the store has compacted is gone for watchers too, even if the cache still holds it:
            // a client resuming from there must relist (410), exactly as against etcd.
            match app.registry.store().compacted_revision().await {
                Ok(compacted) if rv < compacted => {
                    let _ = tx.send(enc.event("ERROR", &ApiError::expired(rv, compacted).to_status())).await;
                    return;
                }
                _ => {}
            }
            match cache.watch_from(&filter.prefix, rv) {
                WatchStart::Ok(replay, rx) => Source::Cache(replay.into_iter(), rx),
                WatchStart::TooOld => match app.registry.store().watch(&filter.prefix, rv).await {
                    Ok(stream) => Source::Store(stream, StoreWatch::new(&app)),
                    Err(rkube_store::Error::Expired { requested, compacted }) => {
                        let _ = tx.send(enc.event("ERROR", &ApiError::expired(requested, compacted).to_status())).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(enc.event("ERROR", &ApiError::internal(e.to_string()).to_status())).await;
                        return;
                    }
                },
            }
        }
    };
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    loop {
        // A watch fed by the store (it started, or fell, behind the cache's history) goes back to the cache as
        // soon as the cache holds every event after the last one sent: reading the store means a query and a
        // parse per event and watcher, where the cache parsed each event once for all.
        if matches!(source, Source::Store(..))
            && let WatchStart::Ok(replay, rx) = cache.watch_from(&filter.prefix, last_rv)
        {
            source = Source::Cache(replay.into_iter(), rx);
        }
        let next: Option<Arc<CacheEvent>> = match &mut source {
            Source::Cache(replay, rx) => match replay.next() {
                Some(e) => Some(e),
                None => tokio::select! {
                    r = rx.recv() => match r {
                        Ok(e) => Some(e),
                        // Fell behind the live events (a slow client, a burst of other resources' changes): carry
                        // on from the cache's history after the last event seen, the client noticing nothing.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => match cache.watch_from(&filter.prefix, last_rv) {
                            WatchStart::Ok(replay, fresh) => {
                                source = Source::Cache(replay.into_iter(), fresh);
                                continue;
                            }
                            // Further back than the history: the client resumes from its resourceVersion or relists.
                            WatchStart::TooOld => return,
                        },
                        Err(_) => return,
                    },
                    _ = ticker.tick() => None,
                    _ = tx.closed() => return,
                    // The cache reloaded: events may be missing here, so end; the client resumes or relists.
                    _ = resets.changed() => return,
                },
            },
            Source::Store(stream, _) => tokio::select! {
                r = stream.next() => match r {
                    Some(Ok(e)) => match to_cache_event(e) {
                        Some(e) => Some(e),
                        None => continue,
                    },
                    Some(Err(rkube_store::Error::Expired { requested, compacted })) => {
                        let _ = tx.send(enc.event("ERROR", &ApiError::expired(requested, compacted).to_status())).await;
                        return;
                    }
                    _ => return,
                },
                _ = ticker.tick() => None,
                _ = tx.closed() => return,
            },
        };
        let Some(ev) = next else {
            if bookmarks {
                let mark = json!({ "kind": filter.def.kind, "apiVersion": filter.def.api_version(), "metadata": { "resourceVersion": last_rv.to_string() } });
                if tx.send(enc.event("BOOKMARK", &mark)).await.is_err() {
                    return;
                }
            }
            continue;
        };
        if ev.revision <= last_rv {
            continue;
        }
        last_rv = ev.revision;
        if !ev.key.starts_with(&filter.prefix) {
            continue;
        }
        let now = filter.matches(&ev.key, &ev.object.value);
        let before = ev.prev.as_ref().is_some_and(|p| filter.matches(&ev.key, &p.value));
        let ty = match (ev.kind, before, now) {
            (EventKind::Added, _, true) => "ADDED",
            (EventKind::Modified, true, true) => "MODIFIED",
            (EventKind::Modified, false, true) => "ADDED",
            (EventKind::Modified, true, false) => "DELETED",
            (EventKind::Deleted, _, true) => "DELETED",
            (EventKind::Deleted, true, false) => "DELETED",
            _ => continue,
        };
        if tx.send(enc.cached(ty, &ev.object)).await.is_err() {
            return;
        }
    }
}
