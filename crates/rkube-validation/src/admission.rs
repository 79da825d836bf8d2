//! Defaults upstream sets on pods in admission, not in defaulting: the ServiceAccount plugin (service account
//! name and the token volume), Priority (priority and preemption policy) and DefaultTolerationSeconds.
//! They are separate from [`crate::default_pod`] because they depend on cluster state the caller looks up.

use serde_json::{Value, json};

use crate::value::{child_mut, set_default_str};

/// Where the service account token volume is mounted.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn is_mirror(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations/kubernetes.io~1config.mirror").is_some()
}

/// The ServiceAccount admission plugin: `serviceAccountName` "default" when unset (and `serviceAccount` kept
/// equal), then, when `automount` holds (the pod's and the service account's `automountServiceAccountToken`
/// allow it), the projected `kube-api-access-<suffix>` volume mounted read-only in every container and init
/// container that does not already mount the path. Mirror pods are left alone.
pub fn admit_service_account(pod: &mut Value, automount: bool, volume_suffix: &str) {
    if is_mirror(pod) {
        return;
    }
    let Some(spec) = child_mut(pod, "spec") else { return };
    if spec.get("serviceAccountName").and_then(Value::as_str).is_none_or(str::is_empty) {
        spec.insert("serviceAccountName".into(), json!("default"));
    }
    let sa = spec.get("serviceAccountName").cloned().unwrap_or(json!("default"));
    spec.insert("serviceAccount".into(), sa);
    let pod_allows = spec.get("automountServiceAccountToken").and_then(Value::as_bool) != Some(false);
    if !automount || !pod_allows {
        return;
    }
    let name = format!("kube-api-access-{volume_suffix}");
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                if mounts.is_null() {
                    *mounts = json!([]);
                }
                if let Some(m) = mounts.as_array_mut()
                    && !m.iter().any(|x| x.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT_PATH))
                {
                    m.push(json!({"name": name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}));
                    mounted = true;
                }
            }
        }
    }
    if mounted {
        let vols = spec.entry("volumes").or_insert_with(|| json!([]));
        if vols.is_null() {
            *vols = json!([]);
        }
        if let Some(v) = vols.as_array_mut() {
            v.push(volume);
        }
    }
}

/// A PriorityClass as the Priority plugin uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityClassRef {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: i64,
    /// Its preemption policy.
    pub preemption_policy: String,
}

/// The Priority admission plugin once the caller resolved the class: the pod's `priorityClassName` (or the
/// cluster's global default class when it names none) gives `priority` and `preemptionPolicy`; with no class at
/// all the priority is 0 and the policy PreemptLowerPriority.
pub fn admit_priority(pod: &mut Value, class: Option<&PriorityClassRef>) {
    let Some(spec) = child_mut(pod, "spec") else { return };
    match class {
        Some(c) => {
            set_default_str(spec, "priorityClassName", &c.name);
            spec.insert("priority".into(), json!(c.value));
            set_default_str(spec, "preemptionPolicy", &c.preemption_policy);
        }
        None => {
            spec.insert("priority".into(), json!(0));
            set_default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
        }
    }
}

fn tolerates(tolerations: &[Value], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
        let k = t.get("key").and_then(Value::as_str).unwrap_or_default();
        let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
        (effect.is_empty() || effect == "NoExecute") && ((k.is_empty() && op == "Exists") || k == key)
    })
}

/// The DefaultTolerationSeconds plugin: pods tolerate `not-ready` and `unreachable` nodes for `seconds`
/// (300 upstream) unless they already tolerate them.
pub fn admit_default_toleration_seconds(pod: &mut Value, seconds: i64) {
    let Some(spec) = child_mut(pod, "spec") else { return };
    let mut list = spec.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut added = false;
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        if !tolerates(&list, key) {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
            added = true;
        }
    }
    if added {
        spec.insert("tolerations".into(), Value::Array(list));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_and_priority() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
        admit_service_account(&mut pod, true, "abcde");
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["serviceAccount"], "default");
        assert_eq!(pod["spec"]["volumes"][0]["name"], "kube-api-access-abcde");
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], SERVICE_ACCOUNT_MOUNT_PATH);
        admit_priority(&mut pod, None);
        assert_eq!(pod["spec"]["priority"], 0);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        admit_default_toleration_seconds(&mut pod, 300);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        let mut p2 = pod.clone();
        admit_default_toleration_seconds(&mut p2, 300);
        assert_eq!(p2, pod);
        crate::default_pod(&mut pod);
        assert!(crate::validate_pod(&pod, None).is_empty(), "{:?}", crate::validate_pod(&pod, None));
    }
}
