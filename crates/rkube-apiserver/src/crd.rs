//! CustomResourceDefinitions: each established CRD adds its served versions to the catalog (so discovery,
//! the registry and RBAC see the custom resource), gets upstream's status (NamesAccepted, Established,
//! acceptedNames, storedVersions), and on deletion takes its custom objects with it before it goes
//! (upstream's `customresourcecleanup.apiextensions.k8s.io` finalizer).

use std::sync::Arc;

use rkube_apimachinery::ApiError;
use rkube_store::EventKind;
use serde_json::{Value, json};

use crate::registry::{DeleteOpts, WriteCtx};
use crate::resource::ResourceDef;
use crate::state::AppState;

const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn crd_def() -> Arc<ResourceDef> {
    ResourceDef::builtin_named("apiextensions.k8s.io", "customresourcedefinitions")
}

/// The resources a CRD serves, one per served version.
pub(crate) fn defs_of(crd: &Value) -> Vec<Arc<ResourceDef>> {
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let group = spec.get("group").and_then(Value::as_str).unwrap_or_default().to_owned();
    let names = spec.get("names").cloned().unwrap_or_default();
    let plural = names.get("plural").and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let singular =
        names.get("singular").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let mut out = Vec::new();
    for v in spec.get("versions").and_then(Value::as_array).into_iter().flatten() {
        if v.get("served") != Some(&json!(true)) {
            continue;
        }
        let mut subresources = Vec::new();
        if v.pointer("/subresources/status").is_some() {
            subresources.push("status".to_owned());
        }
        if v.pointer("/subresources/scale").is_some() {
            subresources.push("scale".to_owned());
        }
        out.push(Arc::new(ResourceDef {
            group: group.clone(),
            version: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            resource: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            verbs: rkube_apimachinery::catalogue::CRUD.iter().map(|s| (*s).to_owned()).collect(),
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            subresources,
            storage: format!("{group}/{plural}"),
            printer_columns: Some(v.get("additionalPrinterColumns").cloned().unwrap_or_else(|| json!([]))),
            scale_paths: v.pointer("/subresources/scale").map(|s| {
                let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
                (
                    text("specReplicasPath").unwrap_or_else(|| ".spec.replicas".to_owned()),
                    text("statusReplicasPath").unwrap_or_else(|| ".status.replicas".to_owned()),
                    text("labelSelectorPath"),
                )
            }),
        }));
    }
    out
}

fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| c.get("type") == Some(&json!("Established")) && c.get("status") == Some(&json!("True")))
    })
}

/// The status upstream's CRD controllers write once names are accepted.
fn status_for(crd: &Value) -> Value {
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({}));
    let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    if names.get("singular").is_none() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&json!(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored = crd.pointer("/status/storedVersions").and_then(Value::as_array).cloned().unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    let now = crate::meta::now();
    json!({
        "conditions": [
            { "type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found" },
            { "type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted" },
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    })
}

async fn reconcile(app: &Arc<AppState>, crd: &Value) -> Result<(), ApiError> {
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let def = crd_def();
    let ctx = WriteCtx::default();
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        // Delete every custom object of this CRD, then release the CRD.
        for d in defs_of(crd).into_iter().take(1) {
            let (objs, _) = app.registry.cache().list(&app.registry.prefix(&d, None));
            for o in objs {
                let n = o.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let ns = o.value.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
                match app.registry.delete(&d, ns.as_deref(), &n, &DeleteOpts::default()).await {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let (g, p) = (
            crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default(),
            crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default(),
        );
        app.catalog.set_custom(g, p, Vec::new());
        app.registry.openapi_mut().remove_crd(g, p);
        app.registry.set_schemas(g, p, Vec::new());
        app.registry
            .update_with(&def, None, &name, None, &ctx, |cur| {
                let mut next = cur.cloned().ok_or_else(|| ApiError::not_found(&def.group, &def.resource, &name))?;
                if let Some(f) = next.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                    f.retain(|x| x != CLEANUP_FINALIZER);
                }
                Ok(next)
            })
            .await?;
        return Ok(());
    }
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default().to_owned();
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default().to_owned();
    app.catalog.set_custom(&group, &plural, defs_of(crd));
    let schemas = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?.to_owned();
            let schema = rkube_schema::Schema::from_crd_version(v.pointer("/schema/openAPIV3Schema")?).ok()?;
            Some((name, Arc::new(schema)))
        })
        .collect();
    app.registry.set_schemas(&group, &plural, schemas);
    if let Err(e) = app.registry.openapi_mut().apply_crd(crd) {
        tracing::warn!(crd = %name, error = %e, "CRD schema not published in OpenAPI");
    }
    let has_finalizer = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if !has_finalizer {
        app.registry
            .update_with(&def, None, &name, None, &ctx, |cur| {
                let mut next = cur.cloned().ok_or_else(|| ApiError::not_found(&def.group, &def.resource, &name))?;
                let m = crate::meta::meta_mut(&mut next);
                let f = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = f.as_array_mut()
                    && !a.iter().any(|x| x == CLEANUP_FINALIZER)
                {
                    a.push(json!(CLEANUP_FINALIZER));
                }
                Ok(next)
            })
            .await?;
    }
    if !established(crd) || crd.pointer("/status/acceptedNames") != Some(&status_for(crd)["acceptedNames"]) {
        app.registry
            .update_with(&def, None, &name, Some("status"), &ctx, |cur| {
                let mut next = cur.cloned().ok_or_else(|| ApiError::not_found(&def.group, &def.resource, &name))?;
                let mut status = status_for(&next);
                // Keep transition times when the conditions already say the same.
                if established(&next)
                    && let Some(c) = next.pointer("/status/conditions")
                {
                    status["conditions"] = c.clone();
                }
                next["status"] = status;
                Ok(next)
            })
            .await?;
    }
    Ok(())
}

/// Follows CRDs in the watch cache until shutdown: the controller behind custom resources.
pub(crate) async fn run(app: Arc<AppState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let prefix = app.registry.prefix(&crd_def(), None);
    let (current, _, mut rx) = app.registry.cache().snapshot_and_subscribe(&prefix);
    for c in current {
        if let Err(e) = reconcile(&app, &c.value).await {
            tracing::warn!(error = %e, "CRD reconcile failed");
        }
    }
    loop {
        let ev = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.changed() => return,
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Missed events: reconcile every CRD again.
                let (all, _) = app.registry.cache().list(&prefix);
                for c in all {
                    if let Err(e) = reconcile(&app, &c.value).await {
                        tracing::warn!(error = %e, "CRD reconcile failed");
                    }
                }
                continue;
            }
            Err(_) => return,
        };
        if !ev.key.starts_with(&prefix) {
            continue;
        }
        match ev.kind {
            EventKind::Deleted => {
                let v = &ev.object.value;
                let (g, p) = (
                    v.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default(),
                    v.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default(),
                );
                app.catalog.set_custom(g, p, Vec::new());
                app.registry.openapi_mut().remove_crd(g, p);
            }
            _ => {
                if let Err(e) = reconcile(&app, &ev.object.value).await {
                    tracing::warn!(error = %e, "CRD reconcile failed");
                }
            }
        }
    }
}
