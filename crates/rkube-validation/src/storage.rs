//! PersistentVolumes and PersistentVolumeClaims: defaults (phase Pending, reclaim Retain, volumeMode
//! Filesystem) and validation (access modes, storage request, capacity, one volume source, immutability).

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{
    child, forbidden, invalid_raw, invalid_str, json_text, key, not_supported, not_supported_str, required,
};
use crate::names::dns1123_subdomain;
use crate::podspec::same;
use crate::resources::parse_quantity;
use crate::value::{arr, child_mut, get, opt_s, s, set_default_str, str_list};

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// `SetDefaults_PersistentVolumeClaimSpec` plus canonical quantities.
pub(crate) fn default_pvc_spec(spec: &mut Value) {
    if let Some(o) = spec.as_object_mut() {
        set_default_str(o, "volumeMode", "Filesystem");
        if let Some(r) = o.get_mut("resources") {
            crate::quantity::canonicalize_list(r.get_mut("requests"));
            crate::quantity::canonicalize_list(r.get_mut("limits"));
        }
    }
}

/// Defaults a PersistentVolumeClaim.
pub fn default_persistent_volume_claim(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        default_pvc_spec(spec);
    }
    if let Some(st) = child_mut(obj, "status") {
        set_default_str(st, "phase", "Pending");
        crate::quantity::canonicalize_list(st.get_mut("capacity"));
    }
}

/// Defaults a PersistentVolume.
pub fn default_persistent_volume(obj: &mut Value) {
    if let Some(spec) = child_mut(obj, "spec") {
        set_default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        set_default_str(spec, "volumeMode", "Filesystem");
        crate::quantity::canonicalize_list(spec.get_mut("capacity"));
        if let Some(h) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
            crate::value::set_default(h, "type", json!(""));
        }
    }
    if let Some(st) = child_mut(obj, "status") {
        set_default_str(st, "phase", "Pending");
    }
}

fn validate_access_modes(spec: &Value, f: &str, required_detail: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let modes = str_list(spec, "accessModes");
    if modes.is_empty() {
        errs.push(required(&child(f, "accessModes"), required_detail));
    }
    let (mut once_pod, mut other) = (false, false);
    for m in &modes {
        if !ACCESS_MODES.contains(m) {
            errs.push(not_supported_str(&child(f, "accessModes"), m, ACCESS_MODES));
        }
        if *m == "ReadWriteOncePod" {
            once_pod = true;
        } else if ACCESS_MODES.contains(m) {
            other = true;
        }
    }
    if once_pod && other {
        errs.push(forbidden(&child(f, "accessModes"), "may not use ReadWriteOncePod with other access modes"));
    }
    errs
}

fn validate_data_source(ds: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if s(ds, "name").is_empty() {
        errs.push(required(&child(f, "name"), ""));
    }
    if s(ds, "kind").is_empty() {
        errs.push(required(&child(f, "kind"), ""));
    }
    let group = s(ds, "apiGroup");
    if group.is_empty() && s(ds, "kind") != "PersistentVolumeClaim" {
        errs.push(invalid_str(
            f,
            s(ds, "kind"),
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        errs.extend(dns1123_subdomain(group).iter().map(|m| invalid_str(&child(f, "apiGroup"), group, m)));
    }
    errs
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &Value, f: &str) -> Vec<Cause> {
    let mut errs = validate_access_modes(spec, f, "at least 1 access mode is required");
    errs.extend(crate::selector::validate_selector(get(spec, "selector"), &child(f, "selector"), false));
    let storage_path = key(&child(f, "resources"), "storage");
    match spec.pointer("/resources/requests/storage").filter(|v| !v.is_null()) {
        None => errs.push(required(&storage_path, "")),
        Some(v) => {
            if let Some(q) = parse_quantity(v, &storage_path, &mut errs)
                && (q.is_negative() || q.is_zero())
            {
                errs.push(invalid_str(&storage_path, &q.canonical(), "must be greater than zero"));
            }
        }
    }
    if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
        errs.extend(dns1123_subdomain(sc).iter().map(|m| invalid_str(&child(f, "storageClassName"), sc, m)));
    }
    if let Some(vm) = opt_s(spec, "volumeMode")
        && !VOLUME_MODES.contains(&vm)
    {
        errs.push(not_supported_str(&child(f, "volumeMode"), vm, VOLUME_MODES));
    }
    if let Some(ds) = get(spec, "dataSource") {
        errs.extend(validate_data_source(ds, &child(f, "dataSource")));
    }
    if let Some(ds) = get(spec, "dataSourceRef") {
        errs.extend(validate_data_source(ds, &child(f, "dataSourceRef")));
    }
    errs
}

/// Validates a PersistentVolumeClaim (on update, the spec is immutable except requests of bound claims).
pub fn validate_persistent_volume_claim(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let mut errs = validate_pvc_spec(spec, "spec");
    if let Some(old) = old {
        let old_spec = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
        let mut new_c = spec.clone();
        let mut old_c = old_spec.clone();
        if s(old_spec, "volumeName").is_empty()
            && let Some(m) = old_c.as_object_mut()
        {
            match spec.get("volumeName") {
                Some(v) => {
                    m.insert("volumeName".into(), v.clone());
                }
                None => {
                    m.remove("volumeName");
                }
            }
        }
        // A nil storage class may be set once.
        if get(old_spec, "storageClassName").is_none()
            && let (Some(m), Some(v)) = (old_c.as_object_mut(), spec.get("storageClassName"))
        {
            m.insert("storageClassName".into(), v.clone());
        }
        let bound = obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
        if bound {
            for c in [&mut new_c, &mut old_c] {
                if let Some(r) = c.pointer_mut("/resources/requests").and_then(Value::as_object_mut) {
                    r.remove("storage");
                }
                if let Some(m) = c.as_object_mut() {
                    m.remove("volumeAttributesClassName");
                }
            }
        }
        if !crate::value::zero_eq(&new_c, &old_c) {
            errs.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let size = |v: &Value| {
            v.pointer("/spec/resources/requests/storage").and_then(|q| crate::quantity::Quantity::from_value(q).ok())
        };
        if let (Some(n), Some(o)) = (size(obj), size(old))
            && n < o
        {
            let status =
                old.pointer("/status/capacity/storage").and_then(|q| crate::quantity::Quantity::from_value(q).ok());
            if status.as_ref().is_none_or(|st| &n <= st) {
                errs.push(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"));
            }
        }
        if !same(spec.get("volumeMode"), old_spec.get("volumeMode")) {
            errs.push(crate::errs::invalid(
                "volumeMode",
                spec.get("volumeMode").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    errs
}

/// Validates a PersistentVolume (on update, the volume source is immutable).
pub fn validate_persistent_volume(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let f = "spec";
    let mut errs = validate_access_modes(spec, f, "");
    let capacity = spec.get("capacity").and_then(Value::as_object);
    if capacity.is_none_or(|c| c.is_empty()) {
        errs.push(required(&child(f, "capacity"), ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        errs.push(not_supported(&child(f, "capacity"), spec.get("capacity").unwrap_or(&json!({})), &["storage"]));
    }
    for (r, q) in capacity.into_iter().flatten() {
        let p = key(&child(f, "capacity"), r);
        if let Some(q) = parse_quantity(q, &p, &mut errs)
            && (q.is_negative() || q.is_zero())
        {
            errs.push(invalid_str(&p, &q.canonical(), "must be greater than zero"));
        }
    }
    if let Some(p) = opt_s(spec, "persistentVolumeReclaimPolicy").filter(|p| !p.is_empty())
        && !["Delete", "Recycle", "Retain"].contains(&p)
    {
        errs.push(not_supported_str(&child(f, "persistentVolumeReclaimPolicy"), p, &["Delete", "Recycle", "Retain"]));
    }
    let mut count = 0;
    for k in PV_SOURCES {
        if get(spec, k).is_none() {
            continue;
        }
        if count > 0 && *k != "flexVolume" {
            errs.push(forbidden(&child(f, k), "may not specify more than 1 volume type"));
            continue;
        }
        count += 1;
    }
    if count == 0 {
        errs.push(required(f, "must specify a volume type"));
    }
    if let Some(h) = get(spec, "hostPath") {
        let path = s(h, "path");
        if path.is_empty() {
            errs.push(required("spec.hostPath.path", ""));
        } else if path.trim_end_matches('/').is_empty() && s(spec, "persistentVolumeReclaimPolicy") == "Recycle" {
            errs.push(forbidden(
                "spec.persistentVolumeReclaimPolicy",
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(l) = get(spec, "local") {
        if s(l, "path").is_empty() {
            errs.push(required("spec.local.path", ""));
        }
        if get(spec, "nodeAffinity").is_none() {
            errs.push(required("spec.nodeAffinity", "Local volume requires node affinity"));
        }
    }
    if let Some(na) = get(spec, "nodeAffinity") {
        match get(na, "required") {
            Some(r) => errs.extend(crate::affinity::validate_node_selector(r, "spec.nodeAffinity.required")),
            None => errs.push(required("spec.nodeAffinity.required", "must specify required node constraints")),
        }
    }
    if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
        errs.extend(dns1123_subdomain(sc).iter().map(|m| invalid_str("spec.storageClassName", sc, m)));
    }
    if let Some(vm) = opt_s(spec, "volumeMode")
        && !VOLUME_MODES.contains(&vm)
    {
        errs.push(not_supported_str("spec.volumeMode", vm, VOLUME_MODES));
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
        let source = |sp: &Value| -> Value {
            Value::Object(PV_SOURCES.iter().filter_map(|k| get(sp, k).map(|v| ((*k).to_owned(), v.clone()))).collect())
        };
        if source(spec) != source(old_spec) {
            errs.push(forbidden(
                "spec.persistentvolumesource",
                &format!("spec.persistentvolumesource is immutable after creation\n{}", json_text(&source(spec))),
            ));
        }
        if !same(spec.get("volumeMode"), old_spec.get("volumeMode")) {
            errs.push(crate::errs::invalid(
                "volumeMode",
                spec.get("volumeMode").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        if get(old_spec, "nodeAffinity").is_some() && !same(spec.get("nodeAffinity"), old_spec.get("nodeAffinity")) {
            errs.push(invalid_raw(
                "nodeAffinity",
                &json_text(spec.get("nodeAffinity").unwrap_or(&Value::Null)),
                "field is immutable, except for updating from beta label to GA",
            ));
        }
    }
    let _ = arr(spec, "mountOptions");
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvc_defaults_and_errors() {
        let mut pvc = json!({"spec": {"resources": {"requests": {"storage": "1024Mi"}}}});
        default_persistent_volume_claim(&mut pvc);
        assert_eq!(
            pvc,
            json!({"spec": {"volumeMode": "Filesystem", "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}})
        );
        let msgs: Vec<String> =
            validate_persistent_volume_claim(&json!({"spec": {"accessModes": ["ReadWriteSometimes"]}}), None)
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect();
        assert_eq!(
            msgs,
            vec![
                "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.resources[storage]: Required value",
            ]
        );
        let none: Vec<Cause> = validate_persistent_volume_claim(&json!({"spec": {}}), None);
        assert_eq!(none[0].message, "Required value: at least 1 access mode is required");
    }

    #[test]
    fn pv_rules() {
        let mut pv = json!({"spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
        default_persistent_volume(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert!(validate_persistent_volume(&pv, None).is_empty(), "{:?}", validate_persistent_volume(&pv, None));
        let mut changed = pv.clone();
        changed["spec"]["hostPath"]["path"] = json!("/other");
        assert_eq!(validate_persistent_volume(&changed, Some(&pv))[0].field, "spec.persistentvolumesource");
    }
}
