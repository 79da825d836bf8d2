//! The generic registry: create, get, list, update (and patch), delete for any resource over the store,
//! with upstream's metadata rules, optimistic concurrency and graceful deletion. Kind-specific rules come
//! from [`crate::kinds`].

use std::sync::Arc;
use std::time::Duration;

use rkube_apimachinery::fields::FieldSelector;
use rkube_apimachinery::labels::Selector;
use rkube_apimachinery::{ApiError, Cause, continue_token};
use rkube_store::{KeyLayout, ListOptions, Store};
use serde_json::{Value, json};

use crate::cache::{Cache, with_revision};
use crate::kinds::{self, Strategy};
use crate::meta::{self, meta_mut, meta_str};
use crate::resource::ResourceDef;

/// Who is writing, and how.
#[derive(Debug, Clone, Default)]
pub struct WriteCtx {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: String,
    /// `fieldValidation`.
    pub field_validation: crate::fieldvalidation::Mode,
    /// Warnings for the response.
    pub warnings: Arc<crate::fieldvalidation::Warnings>,
    /// The client's User-Agent (the field manager when `fieldManager` is not given, as upstream).
    pub user_agent: String,
    /// A server-side apply: the object already carries its managedFields.
    pub apply: bool,
}

impl WriteCtx {
    fn manager(&self) -> String {
        rkube_ssa::manager_or_user_agent(&self.field_manager, &self.user_agent)
    }
}

/// Records the writer in `metadata.managedFields` as upstream's field manager does for create and update.
fn track_managed_fields(
    def: &ResourceDef,
    old: Option<&Value>,
    new: Value,
    subresource: Option<&str>,
    ctx: &WriteCtx,
) -> Value {
    if ctx.apply {
        return new;
    }
    let api_version = def.api_version();
    let manager = ctx.manager();
    let now = meta::now();
    let schema = rkube_ssa::BuiltinSchema::for_kind(&api_version, &def.kind);
    let reset = rkube_ssa::reset_fields_for(subresource.unwrap_or_default(), def.has_status());
    let req = rkube_ssa::Request::new(&manager, &api_version, &def.kind, &now)
        .with_subresource(subresource.unwrap_or_default())
        .with_reset_fields(&reset);
    rkube_ssa::update_owned(old, new, &req, &schema)
}

/// An object as the registry hands it around: the watch cache's copy (shared, not cloned; its JSON serialized
/// once for every reader) or one of its own. An update starts from one; a write returns one: what this server
/// wrote is shared with the watch cache, so the answer and every watcher send the same serialization.
pub enum Object {
    /// Shared with the watch cache.
    Shared(Arc<crate::cache::CachedObject>),
    /// Read from the store, or not written (a dry run, a completed deletion).
    Owned(Value),
}

impl std::ops::Deref for Object {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            Object::Shared(o) => &o.value,
            Object::Owned(v) => v,
        }
    }
}

impl Object {
    /// The object as a value of its own (a copy when it is shared).
    pub fn into_owned(self) -> Value {
        match self {
            Object::Shared(o) => Arc::try_unwrap(o).map(|o| o.value).unwrap_or_else(|o| o.value.clone()),
            Object::Owned(v) => v,
        }
    }

    /// The object's JSON, when it is shared (serialized once).
    pub fn json(&self) -> Option<&bytes::Bytes> {
        match self {
            Object::Shared(o) => Some(o.json()),
            Object::Owned(_) => None,
        }
    }
}

/// The query of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `labelSelector`.
    pub labels: Selector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// `DeleteOptions` as the registry uses them.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: Orphan, Background or Foreground.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// A list answer: kind, list metadata and items, either straight from the watch cache (serialized JSON
/// reused) or read from the store.
pub struct ListOutput {
    /// `<Kind>List`.
    pub kind: String,
    /// The group/version.
    pub api_version: String,
    /// `metadata` of the list (resourceVersion, continue).
    pub metadata: Value,
    /// The items.
    pub items: ListItems,
}

/// Where a list's items come from.
pub enum ListItems {
    /// Shared with the watch cache.
    Cached(Vec<Arc<crate::cache::CachedObject>>),
    /// Parsed from the store.
    Values(Vec<Value>),
}

impl ListOutput {
    /// The items as JSON values.
    pub fn item_values(&self) -> Vec<Value> {
        match &self.items {
            ListItems::Cached(objs) => objs.iter().map(|o| o.value.clone()).collect(),
            ListItems::Values(v) => v.clone(),
        }
    }

    /// The whole list as a JSON value.
    pub fn to_value(&self) -> Value {
        json!({ "kind": self.kind, "apiVersion": self.api_version, "metadata": self.metadata, "items": self.item_values() })
    }

    /// The whole list as JSON bytes; cached items are copied, not re-serialized.
    pub fn to_json(&self) -> Vec<u8> {
        let head = json!({ "kind": self.kind, "apiVersion": self.api_version, "metadata": self.metadata });
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        // Re-open the head object to append the items array.
        out.pop();
        out.extend_from_slice(b",\"items\":[");
        match &self.items {
            ListItems::Cached(objs) => {
                for (i, o) in objs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(o.json());
                }
            }
            ListItems::Values(vs) => {
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
                }
            }
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// How long a consistent read waits for the cache to catch up before reading the store instead.
const CACHE_WAIT: Duration = Duration::from_secs(2);

/// The generic registry over one store.
pub struct Registry {
    store: Arc<dyn Store>,
    keys: KeyLayout,
    cache: Arc<Cache>,
    services: crate::services::Allocator,
    openapi: std::sync::RwLock<rkube_openapi::Documents>,
    validation: rkube_validation::Options,
    /// Structural schemas of custom resources by (group, version, plural), kept by the CRD controller.
    schemas: std::sync::RwLock<std::collections::HashMap<(String, String, String), Arc<rkube_schema::Schema>>>,
    /// One lock per namespace that has ResourceQuotas: quota admission and the create it admits run under it,
    /// until the watch cache shows the new object, so concurrent creates cannot all pass on the same usage.
    /// (Upstream serialises through compare-and-swap writes of the quota's `status.used`; one process here.)
    quota_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn is_crd(def: &ResourceDef) -> bool {
    def.group == "apiextensions.k8s.io" && def.resource == "customresourcedefinitions"
}

/// Each version's openAPIV3Schema of a CRD must be structural (upstream refuses the CRD otherwise).
fn crd_schema_causes(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, v) in crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(schema) = v.pointer("/schema/openAPIV3Schema")
            && let Err(c) =
                rkube_schema::Schema::from_crd_version_at(schema, &format!("spec.versions[{i}].schema.openAPIV3Schema"))
        {
            causes.extend(c);
        }
    }
    causes
}

fn is_services(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.resource == "services"
}

/// Maps a store failure to the API error upstream gives for it.
pub fn store_error(def: &ResourceDef, name: &str, e: rkube_store::Error) -> ApiError {
    use rkube_store::Error as E;
    match e {
        E::NotFound { .. } => ApiError::not_found(&def.group, &def.resource, name),
        E::AlreadyExists { .. } => ApiError::already_exists(&def.group, &def.resource, name),
        E::Conflict { .. } => ApiError::conflict(&def.group, &def.resource, name),
        E::Expired { requested, compacted } => ApiError::expired(requested, compacted),
        E::FutureRevision { requested, .. } => {
            ApiError::timeout(format!("Too large resource version: {requested}, current: unknown"))
        }
        E::ValueTooLarge { size, limit, .. } => ApiError::object_too_large(size, limit),
        e @ E::Unavailable { .. } => ApiError::unavailable(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

fn to_bytes(obj: &Value) -> Vec<u8> {
    // A serde_json::Value always serializes.
    serde_json::to_vec(obj).unwrap_or_default()
}

/// The object as stored: upstream keeps `resourceVersion` out of the stored bytes (it is the revision).
/// Taken out and put back rather than serialising a copy: a pod's deep clone costs more than its JSON.
fn for_storage(obj: &mut Value) -> Vec<u8> {
    let rv = obj.get_mut("metadata").and_then(Value::as_object_mut).and_then(|m| m.remove("resourceVersion"));
    let bytes = to_bytes(obj);
    if let Some(rv) = rv {
        meta_mut(obj).insert("resourceVersion".into(), rv);
    }
    bytes
}

fn parse_stored(def: &ResourceDef, name: &str, kv: &rkube_store::KeyValue) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored {} {name:?} is not valid JSON: {e}", def.resource)))?;
    Ok(with_revision(v, kv.mod_revision))
}

fn rv_of(obj: &Value) -> Option<i64> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

impl Registry {
    /// What a successful write returns: the object shared with the watch cache.
    fn written(
        def: &ResourceDef,
        name: &str,
        pending: crate::cache::Pending<'_>,
        revision: rkube_store::Revision,
    ) -> Result<Object, ApiError> {
        pending.written(revision).map(Object::Shared).ok_or_else(|| {
            ApiError::internal(format!("the written {} {name:?} was lost on its way to the watch cache", def.resource))
        })
    }

    /// A registry over `store`, reading through `cache`, allocating service addresses from `ranges`.
    pub fn new(
        store: Arc<dyn Store>,
        keys: KeyLayout,
        cache: Arc<Cache>,
        ranges: crate::services::ServiceRanges,
    ) -> Self {
        let validation = rkube_validation::Options { node_port_range: ranges.node_ports, ..Default::default() };
        let services = crate::services::Allocator::new(store.clone(), keys.clone(), ranges);
        Registry {
            store,
            keys,
            cache,
            services,
            openapi: std::sync::RwLock::new(rkube_openapi::Documents::new()),
            validation,
            schemas: Default::default(),
            quota_locks: Default::default(),
        }
    }

    /// The OpenAPI documents (built-ins plus established CRDs).
    pub(crate) fn openapi(&self) -> std::sync::RwLockReadGuard<'_, rkube_openapi::Documents> {
        self.openapi.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the OpenAPI documents (CRDs come and go).
    pub(crate) fn openapi_mut(&self) -> std::sync::RwLockWriteGuard<'_, rkube_openapi::Documents> {
        self.openapi.write().unwrap_or_else(|e| e.into_inner())
    }

    fn check_fields(&self, obj: &mut Value, ctx: &WriteCtx) -> Result<(), ApiError> {
        let docs = self.openapi();
        crate::fieldvalidation::check(&docs, ctx.field_validation, obj, &ctx.warnings)
    }

    /// Replaces the structural schemas of one custom resource (all its versions).
    pub(crate) fn set_schemas(&self, group: &str, plural: &str, schemas: Vec<(String, Arc<rkube_schema::Schema>)>) {
        let mut map = self.schemas.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|(g, _, p), _| !(g == group && p == plural));
        for (version, s) in schemas {
            map.insert((group.to_owned(), version, plural.to_owned()), s);
        }
    }

    fn schema_of(&self, def: &ResourceDef) -> Option<Arc<rkube_schema::Schema>> {
        self.schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(def.group.clone(), def.version.clone(), def.resource.clone()))
            .cloned()
    }

    /// A custom object against its CRD's schema: prune unknown fields (refused under Strict), default, validate.
    fn custom_schema(&self, def: &ResourceDef, obj: &mut Value, ctx: &WriteCtx) -> Result<Vec<Cause>, ApiError> {
        let Some(schema) = self.schema_of(def) else { return Ok(Vec::new()) };
        let mut probe = obj.clone();
        let unknown = schema.prune(&mut probe);
        if !unknown.is_empty() {
            match ctx.field_validation {
                crate::fieldvalidation::Mode::Strict => {
                    return Err(ApiError::bad_request(
                        rkube_openapi::strict_decoding_error(&unknown).unwrap_or_default(),
                    ));
                }
                crate::fieldvalidation::Mode::Warn => {
                    for p in &unknown {
                        ctx.warnings.push(rkube_schema::unknown_field_warning(p));
                    }
                }
                crate::fieldvalidation::Mode::Ignore => {}
            }
        }
        *obj = probe;
        schema.apply_defaults(obj);
        Ok(schema.validate(obj))
    }

    /// The service address allocator.
    pub(crate) fn services(&self) -> &crate::services::Allocator {
        &self.services
    }

    /// Whether namespace `ns` has any ResourceQuota (then creates there are admitted one at a time).
    fn has_quotas(&self, ns: &str) -> bool {
        // Asked on every namespaced create: neither the definition nor a list of the quotas is built each time.
        static QUOTAS: std::sync::OnceLock<Arc<ResourceDef>> = std::sync::OnceLock::new();
        let def = QUOTAS.get_or_init(|| ResourceDef::builtin_named("", "resourcequotas"));
        self.cache.holds_any(&self.prefix(def, Some(ns)))
    }

    /// The watch cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The store (for health checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key of one object.
    pub fn key(&self, def: &ResourceDef, ns: Option<&str>, name: &str) -> String {
        self.keys.object(&def.storage, if def.namespaced { ns } else { None }, name)
    }

    /// The prefix of a collection (all namespaces when `ns` is `None`).
    pub fn prefix(&self, def: &ResourceDef, ns: Option<&str>) -> String {
        self.keys.collection(&def.storage, if def.namespaced { ns } else { None })
    }

    /// Reads one object (a consistent read: from the watch cache once it has caught up with the store).
    pub async fn get(&self, def: &ResourceDef, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.get_shared(def, ns, name).await.map(|o| o.value.clone())
    }

    /// Reads one object as the cache shares it (its JSON serialized once), falling back to the store when the
    /// cache has not caught up with the store's current revision in time.
    pub async fn get_shared(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<crate::cache::CachedObject>, ApiError> {
        let key = self.key(def, ns, name);
        let current = self.store.current_revision().await.map_err(|e| store_error(def, name, e))?;
        if self.cache.wait_for(current, CACHE_WAIT).await {
            return self.cache.get(&key).ok_or_else(|| ApiError::not_found(&def.group, &def.resource, name));
        }
        match self.store.get(&key).await.map_err(|e| store_error(def, name, e))? {
            Some(kv) => Ok(Arc::new(crate::cache::CachedObject::new(parse_stored(def, name, &kv)?, kv.mod_revision))),
            None => Err(ApiError::not_found(&def.group, &def.resource, name)),
        }
    }

    /// Lists a collection: from the watch cache, or from the store for paged and exact-revision reads.
    pub async fn list(&self, def: &ResourceDef, ns: Option<&str>, q: &ListQuery) -> Result<ListOutput, ApiError> {
        let strategy = kinds::strategy(def);
        q.fields.check_supported(&strategy.selectable_fields()).map_err(|e| ApiError::bad_request(e.0))?;
        let prefix = self.prefix(def, ns);
        let matches = |obj: &Value| {
            (q.labels.is_empty() || q.labels.matches(&meta::labels(obj)))
                && (q.fields.is_empty() || q.fields.matches(|f| strategy.field_value(obj, f)))
        };

        let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
        let exact = q.resource_version_match.as_deref() == Some("Exact");
        let paged = q.limit.is_some_and(|l| l > 0) || q.continue_token.is_some();
        if let Some(m) = q.resource_version_match.as_deref()
            && !matches!(m, "Exact" | "NotOlderThan")
        {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        if q.resource_version_match.is_some() && rv.is_none() {
            return Err(ApiError::bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided"));
        }
        let rv_num = match rv {
            Some(s) => {
                Some(s.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))?)
            }
            None => None,
        };

        let (items, list_rv, next) = if exact || paged {
            let (v, rv, next) = self
                .list_from_store(
                    def,
                    &prefix,
                    q,
                    rv_num.filter(|r| *r > 0 && (exact || q.continue_token.is_none())),
                    &matches,
                )
                .await?;
            (ListItems::Values(v), rv, next)
        } else {
            // resourceVersion "" is a consistent read: the cache must have caught up with the store's current revision.
            let wanted = match rv_num {
                Some(r) => r,
                None => self.store.current_revision().await.map_err(|e| store_error(def, "", e))?,
            };
            if wanted > 0 && !self.cache.wait_for(wanted, CACHE_WAIT).await {
                if rv_num.is_some() {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {wanted}, current: {}",
                        self.cache.revision()
                    )));
                }
                // Writes outside the cached prefix can leave the cache behind the store's revision: read the store.
                let (v, rv, next) = self.list_from_store(def, &prefix, q, None, &matches).await?;
                (ListItems::Values(v), rv, next)
            } else {
                let (objs, rev) = self.cache.list(&prefix);
                (ListItems::Cached(objs.into_iter().filter(|o| matches(&o.value)).collect()), rev, None)
            }
        };
        let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
        if let Some(token) = next {
            metadata["continue"] = json!(token);
        }
        Ok(ListOutput { kind: format!("{}List", def.kind), api_version: def.api_version(), metadata, items })
    }

    async fn list_from_store(
        &self,
        def: &ResourceDef,
        prefix: &str,
        q: &ListQuery,
        at: Option<i64>,
        matches: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<(Vec<Value>, i64, Option<String>), ApiError> {
        let limit = q.limit.filter(|l| *l > 0);
        let (mut revision, mut start) = match &q.continue_token {
            Some(t) => {
                let (rv, start) =
                    continue_token::decode(t, prefix).map_err(|e| ApiError::bad_request(e.to_string()))?;
                (Some(rv), Some(start))
            }
            None => (at, None),
        };
        let mut items = Vec::new();
        loop {
            let want = limit.map(|l| l - items.len());
            let page = self
                .store
                .list(prefix, ListOptions { revision, limit: want, start: start.clone() })
                .await
                .map_err(|e| match e {
                    rkube_store::Error::Expired { .. } if q.continue_token.is_some() => ApiError::expired_continue(),
                    e => store_error(def, "", e),
                })?;
            revision = Some(page.revision);
            for kv in &page.items {
                let obj = parse_stored(def, "", kv)?;
                if matches(&obj) {
                    items.push(obj);
                }
            }
            let last = page.items.last().map(|kv| kv.key.clone());
            let full = limit.is_some_and(|l| items.len() >= l);
            match (page.more, last) {
                (true, Some(last)) if full => {
                    let rev = page.revision;
                    return Ok((items, rev, Some(continue_token::encode(rev, prefix, &last))));
                }
                (true, Some(last)) => start = Some(format!("{last}\0")),
                _ => return Ok((items, page.revision, None)),
            }
        }
    }

    /// Creates an object in `ns` (ignored for cluster-scoped resources).
    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        mut obj: Value,
        ctx: &WriteCtx,
    ) -> Result<Object, ApiError> {
        let strategy = kinds::strategy(def);
        check_type(def, &mut obj)?;
        self.check_fields(&mut obj, ctx)?;
        let name = match meta_str(&obj, "name").filter(|s| !s.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta_str(&obj, "generateName").filter(|s| !s.is_empty()) {
                Some(prefix) => {
                    let n = meta::generate_name(prefix);
                    meta_mut(&mut obj).insert("name".into(), json!(n));
                    n
                }
                None => {
                    return Err(ApiError::invalid(
                        &def.group,
                        &def.kind,
                        "",
                        vec![Cause::required("metadata.name", "name or generateName is required")],
                    ));
                }
            },
        };
        self.scope_namespace(def, ns, &mut obj)?;
        {
            let m = meta_mut(&mut obj);
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            m.insert("uid".into(), json!(meta::new_uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            if strategy.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if def.has_status() {
            strategy.reset_status_on_create(&mut obj);
        }
        strategy.prepare_create(&mut obj);
        strategy.default(&mut obj);
        rkube_validation::default(&def.group, &def.resource, &mut obj);
        if def.namespaced {
            self.check_namespace_open(def, ns.unwrap_or_default(), &name).await?;
        }
        let quota_lock = match ns {
            Some(ns) if def.namespaced && !ctx.dry_run && self.has_quotas(ns) => {
                let lock = self
                    .quota_locks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(ns.to_owned())
                    .or_default()
                    .clone();
                Some(lock.lock_owned().await)
            }
            _ => None,
        };
        crate::admission::admit_create(self, def, ns, &mut obj).await?;
        let mut obj = track_managed_fields(def, None, obj, None, ctx);
        let mut causes = meta::validate_name(strategy.name_rule(), &name, "metadata.name");
        causes.extend(validate_object_meta(&obj));
        causes.extend(strategy.validate(&obj, None));
        causes.extend(rkube_validation::validate_with(&def.group, &def.resource, &obj, None, &self.validation));
        causes.extend(self.custom_schema(def, &mut obj, ctx)?);
        if is_crd(def) {
            causes.extend(crd_schema_causes(&obj));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.group, &def.kind, &name, causes));
        }
        if ctx.dry_run {
            return Ok(Object::Owned(obj));
        }
        let key = self.key(def, ns, &name);
        let owner = format!("{}/{name}", ns.unwrap_or_default());
        let claimed = match is_services(def) {
            true => self.services.allocate(&mut obj, &owner, &name).await?,
            false => Vec::new(),
        };
        let bytes = for_storage(&mut obj);
        let pending = self.cache.pend(&key, &bytes, obj);
        match self.store.create(&key, bytes).await {
            Ok(kv) => {
                if quota_lock.is_some() {
                    // The next admission under the lock must count this object.
                    self.cache.wait_for(kv.mod_revision, std::time::Duration::from_secs(2)).await;
                }
                Self::written(def, &name, pending, kv.mod_revision)
            }
            Err(e) => {
                // Only what this create reserved: on AlreadyExists the addresses are the existing service's.
                self.services.release_claimed(claimed).await;
                Err(store_error(def, &name, e))
            }
        }
    }

    fn scope_namespace(&self, def: &ResourceDef, ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        let body_ns = meta_str(obj, "namespace").filter(|s| !s.is_empty()).map(str::to_owned);
        if def.namespaced {
            let ns = ns
                .ok_or_else(|| ApiError::bad_request("the namespace of the object is missing from the request path"))?;
            if let Some(b) = body_ns
                && b != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(obj).insert("namespace".into(), json!(ns));
        } else {
            meta_mut(obj).remove("namespace");
        }
        Ok(())
    }

    /// NamespaceLifecycle admission: objects may only be created in namespaces that exist and are not terminating.
    async fn check_namespace_open(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<(), ApiError> {
        let key = self.keys.object("namespaces", None, ns);
        // Only whether it is terminating matters: every create asks, so the cached namespace is not copied.
        let terminating = |n: &Value| n.pointer("/metadata/deletionTimestamp").is_some();
        let existing = match self.cache.get(&key) {
            Some(o) => Some(terminating(&o.value)),
            None => self
                .store
                .get(&key)
                .await
                .map_err(|e| store_error(def, name, e))?
                .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
                .map(|n| terminating(&n)),
        };
        match existing {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(true) => Err(ApiError::forbidden_because(
                &def.group,
                &def.resource,
                name,
                &format!("unable to create new content in namespace {ns} because it is being terminated"),
            )
            .with_cause(
                "NamespaceTerminating",
                &format!("namespace {ns} is being terminated"),
                "metadata.namespace",
            )),
            Some(false) => Ok(()),
        }
    }

    /// Updates an object: `desire` gets the current object (or `None` when absent) and returns the wanted one.
    /// A `resourceVersion` in the wanted object is a precondition (checked against the object read); a write
    /// that loses a race is retried from a fresh read, as upstream's GuaranteedUpdate does.
    /// `subresource` is `Some("status")` for status updates.
    pub async fn update_with<F>(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        ctx: &WriteCtx,
        mut desire: F,
    ) -> Result<(Object, bool), ApiError>
    where
        F: FnMut(Option<&Value>) -> Result<Value, ApiError>,
    {
        let strategy = kinds::strategy(def);
        let key = self.key(def, ns, name);
        // The first attempt starts from the watch cache's copy (no store read, no parsing): the write is a
        // compare-and-swap on that copy's revision, so a stale copy costs one retry from the store. Every other
        // outcome a stale copy could cause (an error, "nothing changed", a failed precondition) is decided again
        // from the store. Services allocate addresses before writing, and dry runs write nothing: both read the store.
        let mut optimistic = !ctx.dry_run && !is_services(def);
        // On the optimistic attempt, a failure means "read the store and try again" rather than an answer.
        macro_rules! or_retry {
            ($from_cache:expr, $result:expr) => {
                match $result {
                    Ok(v) => v,
                    Err(_) if $from_cache => continue,
                    Err(e) => return Err(e),
                }
            };
        }
        loop {
            let cached = if optimistic { self.cache.get(&key) } else { None };
            optimistic = false;
            let from_cache = cached.is_some();
            let current = match cached {
                Some(o) => {
                    let revision = o.revision;
                    Some((Object::Shared(o), revision))
                }
                None => match self.store.get(&key).await.map_err(|e| store_error(def, name, e))? {
                    Some(kv) => Some((Object::Owned(parse_stored(def, name, &kv)?), kv.mod_revision)),
                    None => None,
                },
            };
            let mut wanted = or_retry!(from_cache, desire(current.as_ref().map(|(v, _)| &**v)));
            or_retry!(from_cache, check_type(def, &mut wanted));
            // A binding is the server's own change of a stored pod: it has no client fields to check.
            if subresource != Some("binding") {
                or_retry!(from_cache, self.check_fields(&mut wanted, ctx));
            }
            match meta_str(&wanted, "name") {
                Some(n) if n == name => {}
                Some(n) if !n.is_empty() => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
                _ => {
                    meta_mut(&mut wanted).insert("name".into(), json!(name));
                }
            }
            or_retry!(from_cache, self.scope_namespace(def, ns, &mut wanted));
            let Some((old, old_rev)) = current else {
                if (strategy.allow_create_on_update() || ctx.apply) && subresource.is_none() {
                    meta_mut(&mut wanted).remove("resourceVersion");
                    return self.create(def, ns, wanted, ctx).await.map(|v| (v, true));
                }
                return Err(ApiError::not_found(&def.group, &def.resource, name));
            };
            let precondition = rv_of(&wanted);
            if let Some(p) = precondition
                && p != old_rev
            {
                or_retry!(from_cache, Err::<(), _>(ApiError::conflict(&def.group, &def.resource, name)));
            }
            let mut new = merge_for_update(def, strategy, &old, wanted, subresource);
            if subresource.is_none() {
                if is_services(def) {
                    rkube_validation::service::prepare_service_update(&mut new, &old);
                }
                strategy.default(&mut new);
                rkube_validation::default(&def.group, &def.resource, &mut new);
            }
            // Bindings are the server's own write of spec.nodeName: upstream neither validates them as a pod
            // update (nodeName is otherwise immutable) nor records a field manager for them.
            let binding = subresource == Some("binding");
            let mut new = if binding { new } else { track_managed_fields(def, Some(&*old), new, subresource, ctx) };
            let mut causes = validate_object_meta(&new);
            causes.extend(rkube_ssa::validate_managed_fields(&new));
            if !binding {
                causes.extend(strategy.validate(&new, Some(&*old)));
                causes.extend(rkube_validation::validate_with(
                    &def.group,
                    &def.resource,
                    &new,
                    Some(&*old),
                    &self.validation,
                ));
            }
            causes.extend(or_retry!(from_cache, self.custom_schema(def, &mut new, ctx)));
            if is_crd(def) {
                causes.extend(crd_schema_causes(&new));
            }
            causes.extend(immutable_meta(&new, &old));
            if !causes.is_empty() {
                or_retry!(from_cache, Err::<(), _>(ApiError::invalid(&def.group, &def.kind, name, causes)));
            }
            if strategy.tracks_generation() && spec_changed(&old, &new) {
                let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
                meta_mut(&mut new).insert("generation".into(), json!(g + 1));
            }
            if same_but_rv(&new, &old) {
                if from_cache {
                    continue;
                }
                // Upstream skips writes that change nothing: the resourceVersion stays.
                return Ok((old, false));
            }
            if ctx.dry_run {
                return Ok((Object::Owned(new), false));
            }
            let (release_after, release_on_failure) = if is_services(def) && subresource.is_none() {
                self.services.reallocate(&mut new, &old, &format!("{}/{name}", ns.unwrap_or_default()), name).await?
            } else {
                (Vec::new(), Vec::new())
            };
            // The last finalizer removed from an object being deleted completes the deletion.
            if new.pointer("/metadata/deletionTimestamp").is_some()
                && finalizers(&new).is_empty()
                && !strategy.deletion_blocked(&new)
            {
                match self.store.delete(&key, Some(old_rev)).await {
                    Ok((_, rev)) => {
                        if is_services(def) {
                            self.services.release(&new).await;
                        }
                        return Ok((Object::Owned(with_revision(new, rev)), false));
                    }
                    // Someone wrote in between: derive the object again from the new current one; a precondition the
                    // caller gave (a resourceVersion in a PUT body or in the patch) is checked again above.
                    Err(rkube_store::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(def, name, e)),
                }
            }
            let bytes = for_storage(&mut new);
            let pending = self.cache.pend(&key, &bytes, new);
            let result = self.store.update(&key, bytes, old_rev).await;
            self.services.release_ports(if result.is_ok() { &release_after } else { &release_on_failure }).await;
            match result {
                Ok(kv) => return Ok((Self::written(def, name, pending, kv.mod_revision)?, false)),
                Err(rkube_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(def, name, e)),
            }
        }
    }

    /// Deletes an object, gracefully where the kind asks for it and only once its finalizers are gone.
    /// Returns the object when it still exists (pending finalizers or grace period), else `None` and the last state.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<(Value, bool), ApiError> {
        let strategy = kinds::strategy(def);
        let key = self.key(def, ns, name);
        loop {
            let Some(kv) = self.store.get(&key).await.map_err(|e| store_error(def, name, e))? else {
                return Err(ApiError::not_found(&def.group, &def.resource, name));
            };
            let current = parse_stored(def, name, &kv)?;
            if let Some(uid) = &opts.precondition_uid {
                let actual = meta_str(&current, "uid").unwrap_or_default();
                if uid != actual {
                    return Err(ApiError::conflict_with(
                        &def.group,
                        &def.resource,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                        vec![],
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict_with(
                    &def.group,
                    &def.resource,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                    vec![],
                ));
            }
            let mut next = current.clone();
            let mut fins = finalizers(&next);
            match opts.propagation_policy.as_deref() {
                Some("Orphan") if strategy.default_gc_finalizers() && !fins.iter().any(|f| f == "orphan") => {
                    fins.push("orphan".into())
                }
                Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                    fins.push("foregroundDeletion".into())
                }
                _ => {}
            }
            let grace = strategy.grace_period(&current, opts.grace_period_seconds);
            // An explicit grace period of 0 (`--force`, the kubelet's final delete) removes the object at once,
            // even while a longer graceful deletion is pending, as upstream's BeforeDelete shortens it to 0.
            let blocked = opts.grace_period_seconds != Some(0) && strategy.deletion_blocked(&current);
            if fins.is_empty() && grace == 0 && !blocked {
                if opts.dry_run {
                    return Ok((current, false));
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok((_, _rev)) => {
                        if is_services(def) {
                            self.services.release(&current).await;
                        }
                        return Ok((current, false));
                    }
                    Err(rkube_store::Error::Conflict { .. }) => continue,
                    Err(rkube_store::Error::NotFound { .. }) => {
                        return Err(ApiError::not_found(&def.group, &def.resource, name));
                    }
                    Err(e) => return Err(store_error(def, name, e)),
                }
            }
            {
                let m = meta_mut(&mut next);
                if !fins.is_empty() {
                    m.insert("finalizers".into(), json!(fins));
                }
                let already = m.contains_key("deletionTimestamp");
                if !already {
                    let at = std::time::SystemTime::now() + Duration::from_secs(grace.max(0) as u64);
                    m.insert("deletionTimestamp".into(), json!(humantime::format_rfc3339_seconds(at).to_string()));
                }
                let prev_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                // A shorter grace period may replace a longer one, never the other way round (as upstream).
                if prev_grace.is_none_or(|p| grace < p) || !already {
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
            }
            strategy.prepare_graceful_delete(&mut next);
            if same_but_rv(&next, &current) || opts.dry_run {
                return Ok((current, true));
            }
            match self.store.update(&key, for_storage(&mut next), kv.mod_revision).await {
                Ok(kv) => return Ok((with_revision(next, kv.mod_revision), true)),
                Err(rkube_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(def, name, e)),
            }
        }
    }
}

/// Checks (and fills in) apiVersion and kind against the resource.
fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!("the body of the request must be a {} object", def.kind)));
    }
    let api_version = def.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(def.kind),
        Some(k) if k == def.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )));
        }
    }
    Ok(())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Whether two objects are equal but for `metadata.resourceVersion` (compared in place: no copies).
fn same_but_rv(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return a == b };
    same_except(a, b, |k| k == "metadata")
        && match (a.get("metadata"), b.get("metadata")) {
            (Some(Value::Object(ma)), Some(Value::Object(mb))) => same_except(ma, mb, |k| k == "resourceVersion"),
            (ma, mb) => ma == mb,
        }
}

/// Whether two maps hold the same entries, leaving out the keys `skip` names.
fn same_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: impl Fn(&str) -> bool,
) -> bool {
    let mut ia = a.iter().filter(|(k, _)| !skip(k));
    let mut ib = b.iter().filter(|(k, _)| !skip(k));
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => !same_except(o, n, |k| k == "metadata" || k == "status"),
        _ => old != new,
    }
}

/// Labels and annotations must be well-formed, as upstream's ObjectMeta validation says.
fn validate_object_meta(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    if let Err(why) = rkube_apimachinery::labels::validate_key(k) {
                        causes.push(Cause::invalid("metadata.labels", &json!(k), &format!("name part {why}")));
                    }
                    match v.as_str() {
                        Some(s) => {
                            if let Err(why) = rkube_apimachinery::labels::validate_value(s) {
                                causes.push(Cause::invalid(
                                    &format!("metadata.labels.{k}"),
                                    v,
                                    &format!("a valid label {why}"),
                                ));
                            }
                        }
                        None => causes.push(Cause::invalid(&format!("metadata.labels.{k}"), v, "must be a string")),
                    }
                }
            }
            None if labels.is_null() => {}
            None => causes.push(Cause::invalid("metadata.labels", labels, "must be a map of strings")),
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations") {
        match ann.as_object() {
            Some(map) => {
                let total: usize = map.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
                if total > 256 * 1024 {
                    causes.push(Cause::invalid(
                        "metadata.annotations",
                        &json!(""),
                        "Too long: must have at most 262144 bytes",
                    ));
                }
                for (k, v) in map {
                    if let Err(why) = rkube_apimachinery::labels::validate_key(k) {
                        causes.push(Cause::invalid("metadata.annotations", &json!(k), &format!("name part {why}")));
                    }
                    if !v.is_string() {
                        causes.push(Cause::invalid(&format!("metadata.annotations.{k}"), v, "must be a string"));
                    }
                }
            }
            None if ann.is_null() => {}
            None => causes.push(Cause::invalid("metadata.annotations", ann, "must be a map of strings")),
        }
    }
    causes.extend(validate_owner_references(obj));
    causes
}

/// Upstream's `ValidateOwnerReferences`: every reference names its owner fully, and at most one is the controller.
fn validate_owner_references(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(refs) = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array) else { return causes };
    let mut controller: Option<String> = None;
    for r in refs {
        let field = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or_default();
        for (f, what) in [("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if field(f).is_empty() {
                causes.push(Cause::invalid(
                    &format!("metadata.ownerReferences.{f}"),
                    &json!(field(f)),
                    &format!("{what} must not be empty"),
                ));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", field("kind"), field("name"));
            match &controller {
                Some(first) => causes.push(Cause::invalid(
                    "metadata.ownerReferences",
                    &Value::Array(refs.clone()),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => controller = Some(this),
            }
        }
    }
    causes
}

/// Fields an update may not change.
fn immutable_meta(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in ["uid", "creationTimestamp"] {
        let (n, o) = (new.pointer(&format!("/metadata/{field}")), old.pointer(&format!("/metadata/{field}")));
        if n != o {
            causes.push(Cause::invalid(&format!("metadata.{field}"), n.unwrap_or(&Value::Null), "field is immutable"));
        }
    }
    causes
}

/// Builds the object to store from the old one and what the client sent, per upstream's update strategies:
/// server-owned metadata is kept; the main resource keeps the old status; the status subresource keeps everything but status.
fn merge_for_update(
    def: &ResourceDef,
    strategy: &dyn Strategy,
    old: &Value,
    mut wanted: Value,
    subresource: Option<&str>,
) -> Value {
    // A binding (server-internal) sets spec.nodeName on the current object: nothing else to merge.
    if subresource == Some("binding") {
        return wanted;
    }
    if subresource == Some("finalize") {
        let mut new = old.clone();
        new["spec"]["finalizers"] = wanted.pointer("/spec/finalizers").cloned().unwrap_or_else(|| json!([]));
        return new;
    }
    if subresource == Some("approval") {
        return kinds::csr::merge_approval(old, &wanted);
    }
    if subresource == Some("status") && def.group == "certificates.k8s.io" {
        return kinds::csr::merge_status(old, &wanted);
    }
    if subresource == Some("status") {
        let mut new = old.clone();
        match wanted.get_mut("status") {
            Some(s) => new["status"] = s.take(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        return new;
    }
    let empty = serde_json::Map::new();
    let old_meta = old.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    {
        let m = meta_mut(&mut wanted);
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            match old_meta.get(field) {
                Some(v) => {
                    m.insert(field.into(), v.clone());
                }
                None => {
                    m.remove(field);
                }
            }
        }
        // A client that does not send managedFields keeps them (upstream: nil means "unchanged").
        if !m.contains_key("managedFields")
            && let Some(mf) = old_meta.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    if def.has_status() {
        match old.get("status") {
            Some(s) => wanted["status"] = s.clone(),
            None => {
                if let Some(o) = wanted.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    strategy.prepare_update(&mut wanted, old);
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_leaves_out_only_the_resource_version() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}, "status": {"s": 1}});
        let same = json!({"metadata": {"name": "a", "resourceVersion": "9"}, "spec": {"x": 1}, "status": {"s": 1}});
        let no_rv = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"s": 1}});
        assert!(same_but_rv(&a, &same));
        assert!(same_but_rv(&a, &no_rv));
        assert!(!same_but_rv(&a, &json!({"metadata": {"name": "b"}, "spec": {"x": 1}, "status": {"s": 1}})));
        assert!(!same_but_rv(&a, &json!({"metadata": {"name": "a"}, "spec": {"x": 1}})));
        assert!(!same_but_rv(&a, &json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"s": 1}, "z": 0})));
        assert!(!same_but_rv(&json!({"spec": {}}), &json!({"metadata": {}, "spec": {}})));
        assert!(!spec_changed(&a, &json!({"metadata": {"name": "z"}, "spec": {"x": 1}, "status": {"s": 2}})));
        assert!(spec_changed(&a, &json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"s": 1}})));
        assert!(spec_changed(&a, &json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"s": 1}, "z": 0})));
    }

    #[test]
    fn stored_bytes_leave_out_the_resource_version_and_the_object_keeps_it() {
        let mut obj = json!({"metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}});
        let stored: Value = serde_json::from_slice(&for_storage(&mut obj)).expect("JSON");
        assert_eq!(stored, json!({"metadata": {"name": "a"}, "data": {"k": "v"}}));
        assert_eq!(obj, json!({"metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}}));
    }

    #[test]
    fn list_json_bytes_equal_the_value_form() {
        let objs = vec![
            Arc::new(crate::cache::CachedObject::new(json!({"kind": "ConfigMap", "metadata": {"name": "a"}}), 3)),
            Arc::new(crate::cache::CachedObject::new(
                json!({"kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"k": "v"}}),
                4,
            )),
        ];
        for items in [
            ListItems::Cached(objs.clone()),
            ListItems::Values(objs.iter().map(|o| o.value.clone()).collect()),
            ListItems::Values(vec![]),
        ] {
            let l = ListOutput {
                kind: "ConfigMapList".into(),
                api_version: "v1".into(),
                metadata: json!({"resourceVersion": "4"}),
                items,
            };
            let parsed: Value = serde_json::from_slice(&l.to_json()).expect("valid JSON");
            assert_eq!(parsed, l.to_value());
        }
    }
}
