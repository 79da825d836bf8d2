//! Subresources with their own shapes: `scale` (autoscaling/v1 Scale over a workload's replicas) and
//! `binding` (assigning a pod to a node). `eviction` lives in `eviction.rs`.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::patch::{self, PatchType};
use crate::registry::{Registry, WriteCtx};
use crate::resource::ResourceDef;

/// The label selector of a workload, written as a selector string (`app=web,tier in (a,b)`), as Scale.status.selector.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    let mut parts = Vec::new();
    // ReplicationControllers have a plain map as selector; apps/v1 kinds a LabelSelector.
    let labels = sel.and_then(|s| s.get("matchLabels")).or_else(|| sel.filter(|s| s.get("matchExpressions").is_none()));
    if let Some(m) = labels.and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel.and_then(|s| s.get("matchExpressions")).and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_owned()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// The Scale view of a workload (custom resources read their CRD's replica and selector paths).
pub(crate) fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some((spec_path, status_path, selector_path)) = &def.scale_paths {
        let selector = selector_path
            .as_deref()
            .and_then(|p| rkube_schema::get_path(obj, p))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": { "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp") },
            "spec": { "replicas": rkube_schema::get_path(obj, spec_path).cloned().unwrap_or(json!(0)) },
            "status": { "replicas": rkube_schema::get_path(obj, status_path).cloned().unwrap_or(json!(0)), "selector": selector },
        });
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj),
        },
    })
}

/// How a scale write arrives.
pub(crate) enum ScaleWrite {
    /// PUT of a whole Scale.
    Replace(Value),
    /// PATCH of the Scale.
    Patch(Value, PatchType),
}

/// Updates a workload's replicas through its Scale; returns the new Scale.
pub(crate) async fn write_scale(
    registry: &Registry,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    write: ScaleWrite,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    let (updated, _) = registry
        .update_with(def, ns, name, None, ctx, |current| {
            let Some(cur) = current else { return Err(ApiError::not_found(&def.group, &def.resource, name)) };
            let scale = scale_of(def, cur);
            let wanted = match &write {
                ScaleWrite::Replace(body) => body.clone(),
                ScaleWrite::Patch(p, ty) => patch::apply("Scale", &scale, p, *ty)?,
            };
            let replicas = match wanted.pointer("/spec/replicas") {
                Some(r) => {
                    r.as_i64().ok_or_else(|| ApiError::bad_request("spec.replicas of a Scale must be an integer"))?
                }
                None => 0,
            };
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![rkube_apimachinery::Cause::invalid(
                        "spec.replicas",
                        &json!(replicas),
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let mut next = cur.clone();
            match &def.scale_paths {
                Some((spec_path, _, _)) => rkube_schema::set_path(&mut next, spec_path, json!(replicas))
                    .map_err(|e| ApiError::internal(format!("setting {spec_path}: {e:?}")))?,
                None => next["spec"]["replicas"] = json!(replicas),
            }
            // A resourceVersion in the Scale is a precondition on the workload (as upstream).
            match wanted.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(rv) => next["metadata"]["resourceVersion"] = json!(rv),
                None => {
                    if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                }
            }
            Ok(next)
        })
        .await?;
    Ok(scale_of(def, &updated))
}

/// Binds a pod to a node (`pods/binding` or `bindings`): sets `spec.nodeName` once.
pub(crate) async fn bind(
    registry: &Registry,
    pods: &ResourceDef,
    ns: Option<&str>,
    pod: &str,
    body: &Value,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    let node = body.pointer("/target/name").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::invalid("", "Binding", pod, vec![rkube_apimachinery::Cause::required("target.name", "")])
    })?;
    let kind = body.pointer("/target/kind").and_then(Value::as_str).unwrap_or("Node");
    if !kind.is_empty() && kind != "Node" {
        return Err(ApiError::invalid(
            "",
            "Binding",
            pod,
            vec![rkube_apimachinery::Cause::not_supported("target.kind", &json!(kind), &["Node", "<empty>"])],
        ));
    }
    registry
        .update_with(pods, ns, pod, Some("binding"), ctx, |current| {
            let Some(cur) = current else { return Err(ApiError::not_found("", "pods", pod)) };
            if cur.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::conflict_with(
                    "",
                    "pods",
                    pod,
                    "pod is being deleted, cannot be assigned to a host",
                    vec![],
                ));
            }
            if let Some(existing) = cur.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                return Err(ApiError::conflict_with(
                    "",
                    "pods",
                    pod,
                    &format!("pod {pod} is already assigned to node \"{existing}\""),
                    vec![],
                ));
            }
            let mut next = cur.clone();
            next["spec"]["nodeName"] = json!(node);
            // PodScheduled=True goes in the same write as the node name, as upstream's binding storage does:
            // a second write would give watchers (the kubelet) a bound pod whose status is about to change.
            let conds = match next["status"]["conditions"].take() {
                Value::Array(cs) => cs,
                _ => Vec::new(),
            };
            let mut conds: Vec<Value> = conds.into_iter().filter(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled")).collect();
            conds.push(json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": crate::meta::now() }));
            next["status"]["conditions"] = Value::Array(conds);
            Ok(next)
        })
        .await?;
    Ok(json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }))
}
