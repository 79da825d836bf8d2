//! Admission plugins run on create, in upstream's order after defaulting: ServiceAccount (the pod's
//! service account, its token volume and image pull secrets), LimitRanger, DefaultTolerationSeconds,
//! Priority and ResourceQuota.
//! NamespaceLifecycle lives in the registry; LimitRanger and ResourceQuota in `quota.rs`.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::registry::Registry;
use crate::resource::ResourceDef;

const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Runs the mutating and validating admission plugins for a new object.
pub(crate) async fn admit_create(
    registry: &Registry,
    def: &ResourceDef,
    ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if def.group.is_empty() && def.resource == "pods" {
        service_account(registry, ns.unwrap_or_default(), obj).await?;
        crate::quota::limit_ranger(registry, ns.unwrap_or_default(), obj)?;
        default_toleration_seconds(obj);
        priority(registry, obj)?;
    }
    if let Some(ns) = ns.filter(|_| def.namespaced) {
        crate::quota::resource_quota(registry, def, ns, obj)?;
    }
    Ok(())
}

async fn service_account(registry: &Registry, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let sa_name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| pod.pointer("/spec/serviceAccount").and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or("default")
        .to_owned();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    spec.insert("serviceAccountName".into(), json!(sa_name));
    spec.insert("serviceAccount".into(), json!(sa_name));
    let sas = ResourceDef::builtin_named("", "serviceaccounts");
    let sa = match registry.cache().get(&registry.key(&sas, Some(ns), &sa_name)) {
        Some(o) => o.value.clone(),
        None => match registry.get(&sas, Some(ns), &sa_name).await {
            Ok(v) => v,
            Err(e) if e.code == 404 => {
                return Err(ApiError::forbidden_because(
                    "",
                    "pods",
                    &name,
                    &format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"),
                ));
            }
            Err(e) => return Err(e),
        },
    };
    // Image pull secrets of the service account go to pods that name none (upstream).
    if spec.get("imagePullSecrets").and_then(Value::as_array).is_none_or(Vec::is_empty)
        && let Some(secrets) = sa.get("imagePullSecrets").and_then(Value::as_array).filter(|a| !a.is_empty())
    {
        spec.insert("imagePullSecrets".into(), json!(secrets));
    }
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| sa.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    let existing = volumes.as_array().and_then(|vs| {
        vs.iter().find_map(|v| {
            v.get("name").and_then(Value::as_str).filter(|n| n.starts_with("kube-api-access-")).map(str::to_owned)
        })
    });
    let volume_name = match existing {
        Some(n) => n,
        None => {
            let n = crate::meta::generate_name("kube-api-access-");
            if let Some(vs) = volumes.as_array_mut() {
                vs.push(json!({
                    "name": n,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                            { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                            { "downwardAPI": { "items": [{ "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } },
                        ],
                    },
                }));
            }
            n
        }
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(ms) = mounts.as_array_mut() else { continue };
            if !ms.iter().any(|m| m.get("mountPath").and_then(Value::as_str) == Some(SA_MOUNT_PATH)) {
                ms.push(json!({ "name": volume_name, "readOnly": true, "mountPath": SA_MOUNT_PATH }));
            }
        }
    }
    Ok(())
}

/// Priority: `spec.priority` and `preemptionPolicy` from the pod's PriorityClass (or the global default one).
fn priority(registry: &Registry, pod: &mut Value) -> Result<(), ApiError> {
    let classes = ResourceDef::builtin_named("scheduling.k8s.io", "priorityclasses");
    let wanted =
        pod.pointer("/spec/priorityClassName").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let (all, _) = registry.cache().list(&registry.prefix(&classes, None));
    let class = match &wanted {
        Some(name) => {
            match all.iter().find(|c| c.value.pointer("/metadata/name").and_then(Value::as_str) == Some(name)) {
                Some(c) => Some(&c.value),
                None => {
                    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
                    return Err(ApiError::forbidden_because(
                        "",
                        "pods",
                        &pod_name,
                        &format!("no PriorityClass with name {name} was found"),
                    ));
                }
            }
        }
        None => all.iter().map(|c| &c.value).find(|c| c.get("globalDefault") == Some(&json!(true))),
    };
    let class = class.map(|c| rkube_validation::admission::PriorityClassRef {
        name: c.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        value: c.get("value").and_then(Value::as_i64).unwrap_or(0),
        preemption_policy: c
            .get("preemptionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("PreemptLowerPriority")
            .to_owned(),
    });
    rkube_validation::admission::admit_priority(pod, class.as_ref());
    Ok(())
}

/// Pods tolerate not-ready and unreachable nodes for 300 s unless they say otherwise (upstream's default).
fn default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(ts) = tolerations.as_array_mut() else { return };
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let covered = ts.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            (k == key || (k.is_empty() && op == "Exists")) && (effect.is_empty() || effect == "NoExecute")
        });
        if !covered {
            ts.push(json!({ "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_added_once() {
        let mut pod = json!({ "spec": { "tolerations": [{ "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 }] } });
        default_toleration_seconds(&mut pod);
        let ts = pod["spec"]["tolerations"].as_array().expect("tolerations");
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0]["tolerationSeconds"], 10);
        assert_eq!(ts[1]["key"], "node.kubernetes.io/not-ready");
    }
}
