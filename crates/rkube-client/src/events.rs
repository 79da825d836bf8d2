//! Events as upstream components record them: core/v1 `Event`s (what `kubectl describe` and
//! `kubectl get events` show), repeats of one event folded into its `count`, and a per-object spam filter
//! (client-go's: a burst of 25, then one per 5 minutes) so a loop that fails forever cannot flood the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};

/// `Normal` or `Warning`, as upstream's event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Spam filter: burst and refill interval per (object, source).
const BURST: f64 = 25.0;
const REFILL: Duration = Duration::from_secs(300);
/// Repeats of one event within this window update the existing Event (client-go's correlator window).
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);

struct Seen {
    namespace: String,
    name: String,
    count: i32,
    first: Time,
    at: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct State {
    seen: HashMap<(String, String, String, String), Seen>,
    buckets: HashMap<String, Bucket>,
}

/// Records events for one component (e.g. `default-scheduler`, `replicaset-controller`). Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: Option<String>,
    state: Arc<Mutex<State>>,
}

/// A reference to `obj` as events name it.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder whose events say `source.component = component` (and `source.host` when given).
    pub fn new(client: Client, component: impl Into<String>, host: Option<String>) -> Recorder {
        Recorder { client, component: component.into(), host, state: Arc::new(Mutex::new(State::default())) }
    }

    /// Records an event about `obj`. Best effort: failures are logged, never returned (as client-go).
    pub async fn record<K: Resource<DynamicType = ()>>(&self, obj: &K, kind: EventType, reason: &str, message: &str) {
        self.record_ref(reference(obj), kind, reason, message).await;
    }

    /// Records an event about the object `regarding`.
    pub async fn record_ref(&self, regarding: ObjectReference, kind: EventType, reason: &str, message: &str) {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        // Events about cluster-scoped objects (nodes) live in `default`, as upstream puts them.
        let namespace = regarding.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_owned());
        let object_key = format!(
            "{}/{}/{}/{}",
            regarding.kind.as_deref().unwrap_or(""),
            namespace,
            regarding.name.as_deref().unwrap_or(""),
            regarding.uid.as_deref().unwrap_or("")
        );
        let key = (object_key.clone(), kind.as_str().to_owned(), reason.to_owned(), message.to_owned());
        let repeat = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let bucket = s
                .buckets
                .entry(format!("{}/{}", self.component, object_key))
                .or_insert(Bucket { tokens: BURST, at: Instant::now() });
            let refill = bucket.at.elapsed().as_secs_f64() / REFILL.as_secs_f64();
            bucket.tokens = (bucket.tokens + refill).min(BURST);
            bucket.at = Instant::now();
            if bucket.tokens < 1.0 {
                return;
            }
            bucket.tokens -= 1.0;
            if s.buckets.len() > 10_000 {
                s.buckets.retain(|_, b| b.at.elapsed() < REFILL * 25);
                s.seen.retain(|_, v| v.at.elapsed() < AGGREGATE_WINDOW);
            }
            match s.seen.get_mut(&key) {
                Some(seen) if seen.at.elapsed() < AGGREGATE_WINDOW => {
                    seen.count += 1;
                    seen.at = Instant::now();
                    Some((seen.namespace.clone(), seen.name.clone(), seen.count, seen.first.clone()))
                }
                _ => None,
            }
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some((ns, name, count, _first)) = repeat {
            let patch = serde_json::json!({"count": count, "lastTimestamp": now, "message": message});
            match Api::<Event>::namespaced(self.client.clone(), &ns)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                // The event expired or was deleted: write a new one.
                Err(e) => tracing::debug!(error = %e, event = %name, "updating an event"),
            }
        }
        let base = regarding.name.clone().unwrap_or_else(|| "event".to_owned());
        let name = format!("{base}.{:x}", uuid::Uuid::new_v4().as_u128() >> 64);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding,
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(kind.as_str().to_owned()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            source: Some(EventSource { component: Some(self.component.clone()), host: self.host.clone() }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Event::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.seen.insert(
                    key,
                    Seen { namespace, name: created.name_any(), count: 1, first: now, at: Instant::now() },
                );
            }
            Err(e) => tracing::debug!(error = %e, %reason, "recording an event"),
        }
    }
}
