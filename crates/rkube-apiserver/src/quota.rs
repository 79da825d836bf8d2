//! The LimitRanger and ResourceQuota admission plugins: container defaults and bounds from a namespace's
//! LimitRanges, and refusal of objects that would exceed a ResourceQuota, with upstream's messages.
//! Usage is counted from the watch cache at admission time (no quota controller writes `status.used` yet).

use rkube_apimachinery::ApiError;
use rkube_validation::quantity::Quantity;
use serde_json::{Value, json};

use crate::registry::Registry;
use crate::resource::ResourceDef;

fn milli(v: &Value) -> Option<i128> {
    Quantity::from_value(v).ok().and_then(|q| q.milli_value())
}

fn items_in(registry: &Registry, group: &str, resource: &str, ns: &str) -> Vec<Value> {
    let def = ResourceDef::builtin_named(group, resource);
    let (objs, _) = registry.cache().list(&registry.prefix(&def, Some(ns)));
    objs.iter().map(|o| o.value.clone()).collect()
}

fn containers_mut(pod: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        for (list, v) in spec.iter_mut() {
            if list == "containers" || list == "initContainers" {
                out.extend(v.as_array_mut().into_iter().flatten().filter_map(Value::as_object_mut));
            }
        }
    }
    out
}

/// Applies the namespace's LimitRange defaults to a pod's containers and checks min/max, as upstream's LimitRanger.
pub(crate) fn limit_ranger(registry: &Registry, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let ranges = items_in(registry, "", "limitranges", ns);
    if ranges.is_empty() {
        return Ok(());
    }
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    for range in &ranges {
        for item in range.pointer("/spec/limits").and_then(Value::as_array).into_iter().flatten() {
            if item.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            for c in containers_mut(pod) {
                let cname = c.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let resources = c.entry("resources").or_insert_with(|| json!({}));
                let mut set_limits = Vec::new();
                let mut set_requests = Vec::new();
                for (field, source, record) in
                    [("limits", "default", &mut set_limits), ("requests", "defaultRequest", &mut set_requests)]
                {
                    if let Some(defaults) = item.get(source).and_then(Value::as_object) {
                        let target = resources.as_object_mut().map(|r| r.entry(field).or_insert_with(|| json!({})));
                        if let Some(t) = target.and_then(Value::as_object_mut) {
                            for (res, q) in defaults {
                                if !t.contains_key(res) {
                                    t.insert(res.clone(), q.clone());
                                    record.push(res.clone());
                                }
                            }
                        }
                    }
                }
                // A request defaults to the limit when only the limit is known (upstream's pod defaulting).
                let limits = resources.get("limits").cloned().unwrap_or_else(|| json!({}));
                if let (Some(l), Some(r)) = (
                    limits.as_object(),
                    resources.as_object_mut().map(|r| r.entry("requests").or_insert_with(|| json!({}))),
                ) && let Some(r) = r.as_object_mut()
                {
                    for (res, q) in l {
                        r.entry(res.clone()).or_insert_with(|| q.clone());
                    }
                }
                if !set_requests.is_empty() {
                    notes.push(format!("{} request for container {cname}", set_requests.join(", ")));
                }
                if !set_limits.is_empty() {
                    notes.push(format!("{} limit for container {cname}", set_limits.join(", ")));
                }
                for (res, max) in item.get("max").and_then(Value::as_object).into_iter().flatten() {
                    match resources.pointer(&format!("/limits/{res}")) {
                        None => problems.push(format!(
                            "maximum {res} usage per Container is {}.  No limit is specified",
                            max.as_str().unwrap_or_default()
                        )),
                        Some(l) if milli(l) > milli(max) => problems.push(format!(
                            "maximum {res} usage per Container is {}, but limit is {}",
                            max.as_str().unwrap_or_default(),
                            l.as_str().unwrap_or_default()
                        )),
                        _ => {}
                    }
                }
                for (res, min) in item.get("min").and_then(Value::as_object).into_iter().flatten() {
                    match resources.pointer(&format!("/requests/{res}")) {
                        None => problems.push(format!(
                            "minimum {res} usage per Container is {}.  No request is specified",
                            min.as_str().unwrap_or_default()
                        )),
                        Some(r) if milli(r) < milli(min) => problems.push(format!(
                            "minimum {res} usage per Container is {}, but request is {}",
                            min.as_str().unwrap_or_default(),
                            r.as_str().unwrap_or_default()
                        )),
                        _ => {}
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        let why = if problems.len() == 1 { problems.remove(0) } else { format!("[{}]", problems.join(", ")) };
        return Err(ApiError::forbidden_because("", "pods", &name, &why));
    }
    if !notes.is_empty() {
        let ann = crate::meta::meta_mut(pod).entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(
                "kubernetes.io/limit-ranger".into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
    Ok(())
}

/// The usage a pod adds to a quota resource (millis for compute resources, 1000 per object for counts).
fn pod_usage(pod: &Value, resource: &str) -> i128 {
    let sum = |field: &str, res: &str| -> i128 {
        ["containers"]
            .iter()
            .flat_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|c| c.pointer(&format!("/resources/{field}/{res}")).and_then(milli))
            .sum()
    };
    match resource {
        "pods" | "count/pods" => 1000,
        "cpu" | "requests.cpu" => sum("requests", "cpu"),
        "memory" | "requests.memory" => sum("requests", "memory"),
        "limits.cpu" => sum("limits", "cpu"),
        "limits.memory" => sum("limits", "memory"),
        _ => 0,
    }
}

/// Whether a quota resource name counts objects of `def`.
fn counts(def: &ResourceDef, resource: &str) -> bool {
    let plain = if def.group.is_empty() { def.resource.clone() } else { format!("{}.{}", def.resource, def.group) };
    resource == format!("count/{plain}") || (def.group.is_empty() && resource == def.resource && resource != "pods")
}

/// Refuses a new object that would exceed a ResourceQuota of its namespace.
pub(crate) fn resource_quota(registry: &Registry, def: &ResourceDef, ns: &str, obj: &Value) -> Result<(), ApiError> {
    let quotas = items_in(registry, "", "resourcequotas", ns);
    if quotas.is_empty() {
        return Ok(());
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let is_pod = def.group.is_empty() && def.resource == "pods";
    let existing: Vec<Value> = if def.is_stored_resource() {
        let (objs, _) = registry.cache().list(&registry.prefix(def, Some(ns)));
        objs.iter().map(|o| o.value.clone()).collect()
    } else {
        Vec::new()
    };
    for q in &quotas {
        let qname = q.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let Some(hard) = q.pointer("/spec/hard").and_then(Value::as_object) else { continue };
        let mut requested = Vec::new();
        let mut used = Vec::new();
        let mut limited = Vec::new();
        let mut missing = Vec::new();
        for (res, limit) in hard {
            let applies = if is_pod {
                pod_usage(obj, res) > 0
                    || matches!(
                        res.as_str(),
                        "cpu" | "memory" | "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory"
                    )
            } else {
                counts(def, res)
            };
            if !applies {
                continue;
            }
            let add = if is_pod { pod_usage(obj, res) } else { 1000 };
            if is_pod && add == 0 && res != "pods" {
                // A quota on compute resources requires every pod to state them (upstream).
                missing.push(res.clone());
                continue;
            }
            let current: i128 = existing
                .iter()
                .filter(|o| !matches!(o.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed")))
                .map(|o| if is_pod { pod_usage(o, res) } else { 1000 })
                .sum();
            let Some(hard_m) = milli(limit) else { continue };
            if current + add > hard_m {
                let show = |m: i128| Quantity::parse(&format!("{m}m")).map(|q| q.canonical()).unwrap_or_default();
                requested.push(format!("{res}={}", show(add)));
                used.push(format!("{res}={}", show(current)));
                limited
                    .push(format!("{res}={}", limit.as_str().map(str::to_owned).unwrap_or_else(|| limit.to_string())));
            }
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(ApiError::forbidden_because(
                &def.group,
                &def.resource,
                &name,
                &format!("failed quota: {qname}: must specify {}", missing.join(",")),
            ));
        }
        if !requested.is_empty() {
            return Err(ApiError::forbidden_because(
                &def.group,
                &def.resource,
                &name,
                &format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    requested.join(","),
                    used.join(","),
                    limited.join(",")
                ),
            ));
        }
    }
    Ok(())
}
