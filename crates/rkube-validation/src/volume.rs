//! Pod volumes: upstream's defaults (emptyDir when no source, file modes 0644, hostPath type "", token
//! expiry) and validation (unique DNS-label names, exactly one source, the common sources' required fields).

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::container::{VolumeSet, validate_local_descending_path, validate_no_backsteps};
use crate::env::{validate_field_ref, validate_resource_field_ref};
use crate::errs::{child, duplicate, forbidden, idx, invalid_int, invalid_str, not_supported_str, required};
use crate::names::{dns1123_label, dns1123_subdomain};
use crate::value::{arr, each_mut, get, has, int, opt_s, s, set_default, set_default_str};

/// Volume source keys in upstream's order, with the name upstream uses in the "more than 1 volume type" path
/// (`downwarAPI` and `cephFS` are upstream's spellings).
const SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];

fn default_field_refs(items: &mut Map<String, Value>) {
    each_mut(items, "items", |it| {
        if let Some(f) = it.get_mut("fieldRef").and_then(Value::as_object_mut) {
            set_default_str(f, "apiVersion", "v1");
        }
        if let Some(d) = it.pointer_mut("/resourceFieldRef/divisor") {
            crate::quantity::canonicalize_value(d, false);
        }
    });
}

/// `SetDefaults_Volume` and the defaults of its source.
pub(crate) fn default_volume(v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    if !SOURCES.iter().any(|(k, _)| o.get(*k).is_some_and(|x| !x.is_null())) {
        o.insert("emptyDir".into(), json!({}));
    }
    if let Some(h) = o.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(h, "type", json!(""));
    }
    for k in ["secret", "configMap"] {
        if let Some(x) = o.get_mut(k).and_then(Value::as_object_mut) {
            set_default(x, "defaultMode", json!(420));
        }
    }
    if let Some(d) = o.get_mut("downwardAPI").and_then(Value::as_object_mut) {
        set_default(d, "defaultMode", json!(420));
        default_field_refs(d);
    }
    if let Some(p) = o.get_mut("projected").and_then(Value::as_object_mut) {
        set_default(p, "defaultMode", json!(420));
        each_mut(p, "sources", |source| {
            if let Some(t) = source.get_mut("serviceAccountToken").and_then(Value::as_object_mut) {
                set_default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = source.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                default_field_refs(d);
            }
        });
    }
    if let Some(e) = o.get_mut("emptyDir").and_then(Value::as_object_mut)
        && let Some(limit) = e.get_mut("sizeLimit")
    {
        crate::quantity::canonicalize_value(limit, false);
    }
    if let Some(i) = o.get_mut("iscsi").and_then(Value::as_object_mut) {
        set_default_str(i, "iscsiInterface", "default");
    }
    if let Some(r) = o.get_mut("rbd").and_then(Value::as_object_mut) {
        set_default_str(r, "pool", "rbd");
        set_default_str(r, "user", "admin");
        set_default_str(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = o.get_mut("azureDisk").and_then(Value::as_object_mut) {
        set_default_str(a, "cachingMode", "ReadWrite");
        set_default_str(a, "kind", "Shared");
        set_default_str(a, "fsType", "ext4");
        set_default(a, "readOnly", json!(false));
    }
    if let Some(sc) = o.get_mut("scaleIO").and_then(Value::as_object_mut) {
        set_default_str(sc, "storageMode", "ThinProvisioned");
        set_default_str(sc, "fsType", "xfs");
    }
    if let Some(spec) = o
        .get_mut("ephemeral")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
        .and_then(|t| t.get_mut("spec"))
    {
        crate::storage::default_pvc_spec(spec);
    }
}

fn validate_mode(v: &Value, k: &str, f: &str) -> Vec<Cause> {
    match int(v, k) {
        Some(m) if !(0..=0o777).contains(&m) => vec![invalid_int(&child(f, k), m, FILE_MODE_MSG)],
        _ => Vec::new(),
    }
}

/// `ValidateLocalNonReservedPath`.
fn validate_local_non_reserved_path(p: &str, f: &str) -> Vec<Cause> {
    let mut errs = validate_local_descending_path(p, f);
    if p.starts_with("..") && !p.starts_with("../") {
        errs.push(invalid_str(f, p, "must not start with '..'"));
    }
    errs
}

fn validate_key_to_path(kp: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if s(kp, "key").is_empty() {
        errs.push(required(&child(f, "key"), ""));
    }
    let path = s(kp, "path");
    if path.is_empty() {
        errs.push(required(&child(f, "path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(path, &child(f, "path")));
    errs.extend(validate_mode(kp, "mode", f));
    errs
}

fn validate_items(src: &Value, f: &str) -> Vec<Cause> {
    arr(src, "items")
        .iter()
        .enumerate()
        .flat_map(|(i, kp)| validate_key_to_path(kp, &idx(&child(f, "items"), i)))
        .collect()
}

fn validate_downward_file(file: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let path = s(file, "path");
    if path.is_empty() {
        errs.push(required(&child(f, "path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(path, &child(f, "path")));
    match (get(file, "fieldRef"), get(file, "resourceFieldRef")) {
        (Some(fr), other) => {
            errs.extend(validate_field_ref(fr, VOLUME_FIELD_PATHS, &child(f, "fieldRef")));
            if other.is_some() {
                errs.push(invalid_str(
                    f,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => errs.extend(validate_resource_field_ref(r, &child(f, "resourceFieldRef"), true)),
        (None, None) => errs.push(required(f, "one of fieldRef and resourceFieldRef is required")),
    }
    errs.extend(validate_mode(file, "mode", f));
    errs
}

fn validate_projected(p: &Value, f: &str, errs: &mut Vec<Cause>) {
    errs.extend(validate_mode(p, "defaultMode", f));
    let mut paths = BTreeSet::new();
    for (i, source) in arr(p, "sources").iter().enumerate() {
        let sp = idx(&child(f, "sources"), i);
        let mut n = 0;
        for k in ["secret", "configMap"] {
            let Some(x) = get(source, k) else { continue };
            n += 1;
            let xp = child(&sp, k);
            if s(x, "name").is_empty() {
                errs.push(required(&child(&xp, "name"), ""));
            }
            for (j, kp) in arr(x, "items").iter().enumerate() {
                errs.extend(validate_key_to_path(kp, &idx(&child(&xp, "items"), j)));
                let path = s(kp, "path");
                if !path.is_empty() && !paths.insert(path.to_owned()) {
                    errs.push(invalid_str(f, s(x, "name"), "conflicting duplicate paths"));
                }
            }
        }
        if let Some(d) = get(source, "downwardAPI") {
            n += 1;
            for file in arr(d, "items") {
                errs.extend(validate_downward_file(file, &child(&sp, "downwardAPI")));
                let path = s(file, "path");
                if !path.is_empty() && !paths.insert(path.to_owned()) {
                    errs.push(invalid_str(f, path, "conflicting duplicate paths"));
                }
            }
        }
        if let Some(t) = get(source, "serviceAccountToken") {
            n += 1;
            let tp = child(&sp, "serviceAccountToken");
            let exp = int(t, "expirationSeconds").unwrap_or(0);
            if exp < 600 {
                errs.push(invalid_int(
                    &child(&tp, "expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(invalid_int(
                    &child(&tp, "expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            let path = s(t, "path");
            if path.is_empty() {
                errs.push(required(&child(f, "path"), ""));
            } else {
                errs.extend(validate_local_non_reserved_path(path, &child(f, "path")));
            }
        }
        if let Some(c) = get(source, "clusterTrustBundle") {
            n += 1;
            let cp = child(&sp, "clusterTrustBundle");
            if !has(c, "name") && !has(c, "signerName") {
                errs.push(required(&cp, "either name or signerName must be specified"));
            }
            let path = s(c, "path");
            if path.is_empty() {
                errs.push(required(&child(&cp, "path"), ""));
            }
            errs.extend(validate_local_non_reserved_path(path, &child(&cp, "path")));
        }
        if n > 1 {
            errs.push(forbidden(&sp, "may not specify more than 1 volume type per source"));
        }
    }
}

/// The checks of one source (`f` is the source's path).
fn validate_source(kind: &str, src: &Value, f: &str, errs: &mut Vec<Cause>) {
    let req = |errs: &mut Vec<Cause>, k: &str| {
        if s(src, k).is_empty() {
            errs.push(required(&child(f, k), ""));
        }
    };
    match kind {
        "emptyDir" => {
            if let Some(q) = get(src, "sizeLimit").and_then(|v| crate::quantity::Quantity::from_value(v).ok())
                && q.is_negative()
            {
                errs.push(forbidden(&child(f, "sizeLimit"), "SizeLimit field must be a valid resource quantity"));
            }
        }
        "hostPath" => {
            let path = s(src, "path");
            if path.is_empty() {
                errs.push(required(&child(f, "path"), ""));
                return;
            }
            errs.extend(validate_no_backsteps(path, &child(f, "path")));
            const TYPES: &[&str] =
                &["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
            if let Some(t) = opt_s(src, "type")
                && !TYPES.contains(&t)
            {
                errs.push(not_supported_str(&child(f, "type"), t, TYPES));
            }
        }
        "gitRepo" => {
            req(errs, "repository");
            errs.extend(validate_local_descending_path(s(src, "directory"), &child(f, "directory")));
        }
        "secret" => {
            req(errs, "secretName");
            errs.extend(validate_mode(src, "defaultMode", f));
            errs.extend(validate_items(src, f));
        }
        "configMap" => {
            req(errs, "name");
            errs.extend(validate_mode(src, "defaultMode", f));
            errs.extend(validate_items(src, f));
        }
        "persistentVolumeClaim" => req(errs, "claimName"),
        "nfs" => {
            req(errs, "server");
            req(errs, "path");
            if !s(src, "path").starts_with('/') {
                errs.push(invalid_str(&child(f, "path"), s(src, "path"), "must be an absolute path"));
            }
        }
        "iscsi" => {
            req(errs, "targetPortal");
            req(errs, "iqn");
        }
        "glusterfs" => {
            if s(src, "endpoints").is_empty() {
                errs.push(required(&child(f, "endpoints"), ""));
            }
            req(errs, "path");
        }
        "rbd" => {
            if arr(src, "monitors").is_empty() {
                errs.push(required(&child(f, "monitors"), ""));
            }
            req(errs, "image");
        }
        "cephfs" if arr(src, "monitors").is_empty() => {
            errs.push(required(&child(f, "monitors"), ""));
        }
        "cinder" | "portworxVolume" => req(errs, "volumeID"),
        "flexVolume" => req(errs, "driver"),
        "azureFile" => {
            req(errs, "secretName");
            req(errs, "shareName");
        }
        "azureDisk" => {
            req(errs, "diskName");
            req(errs, "diskURI");
        }
        "vsphereVolume" => req(errs, "volumePath"),
        "downwardAPI" => {
            errs.extend(validate_mode(src, "defaultMode", f));
            // Upstream validates the files at the volume source's path, without their index.
            for file in arr(src, "items") {
                errs.extend(validate_downward_file(file, f));
            }
        }
        "projected" => validate_projected(src, f, errs),
        "csi" => {
            let driver = s(src, "driver");
            if driver.is_empty() {
                errs.push(required(&child(f, "driver"), ""));
            }
            if driver.len() > 63 {
                errs.push(crate::errs::too_long(&child(f, "driver"), 63));
            }
            errs.extend(
                dns1123_subdomain(&driver.to_lowercase()).iter().map(|m| invalid_str(&child(f, "driver"), driver, m)),
            );
        }
        "ephemeral" => match get(src, "volumeClaimTemplate") {
            None => errs.push(required(&child(f, "volumeClaimTemplate"), "")),
            Some(t) => {
                let tp = child(f, "volumeClaimTemplate");
                errs.extend(crate::selector::validate_labels(
                    t.pointer("/metadata/labels"),
                    &child(&child(&tp, "metadata"), "labels"),
                ));
                let spec = get(t, "spec").cloned().unwrap_or_else(|| json!({}));
                errs.extend(crate::storage::validate_pvc_spec(&spec, &child(&tp, "spec")));
            }
        },
        _ => {}
    }
}

/// `ValidateVolumes`: returns the volumes containers may mount (those without errors) and the causes.
pub(crate) fn validate_volumes(spec: &Value, pod_name: Option<&str>, f: &str) -> (VolumeSet, Vec<Cause>) {
    let mut vols = VolumeSet::new();
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    let created_pvcs: BTreeSet<String> = match pod_name.filter(|n| !n.is_empty()) {
        Some(pod) => arr(spec, "volumes")
            .iter()
            .filter(|v| has(v, "ephemeral"))
            .map(|v| format!("{pod}-{}", s(v, "name")))
            .collect(),
        None => BTreeSet::new(),
    };
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let ip = idx(f, i);
        let name = s(v, "name");
        let mut el = Vec::new();
        let mut count = 0;
        let mut first = None;
        for (k, err_name) in SOURCES {
            let Some(src) = get(v, k) else { continue };
            if count > 0 {
                el.push(forbidden(&child(&ip, err_name), "may not specify more than 1 volume type"));
                continue;
            }
            count += 1;
            first = Some(*k);
            validate_source(k, src, &child(&ip, k), &mut el);
            if *k == "ephemeral"
                && let Some(pod) = pod_name.filter(|n| !n.is_empty() && !name.is_empty())
            {
                let pvc = format!("{pod}-{name}");
                for m in dns1123_subdomain(&pvc) {
                    el.push(invalid_str(&child(&ip, "name"), name, &format!("PVC name {pvc:?}: {m}")));
                }
            }
        }
        if count == 0 {
            el.push(required(&ip, "must specify a volume type"));
        }
        if name.is_empty() {
            el.push(required(&child(&ip, "name"), ""));
        } else {
            el.extend(dns1123_label(name).iter().map(|m| invalid_str(&child(&ip, "name"), name, m)));
        }
        if names.contains(name) {
            el.push(duplicate(&child(&ip, "name"), &json!(name)));
        }
        if el.is_empty() {
            names.insert(name.to_owned());
            vols.insert(name.to_owned(), matches!(first, Some("persistentVolumeClaim" | "ephemeral")));
        } else {
            errs.extend(el);
        }
        if let Some(claim) = v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str)
            && created_pvcs.contains(claim)
        {
            errs.push(invalid_str(
                &child(&child(&ip, "persistentVolumeClaim"), "claimName"),
                claim,
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (vols, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_defaults() {
        let mut v = json!({"name": "data"});
        default_volume(&mut v);
        assert_eq!(v, json!({"name": "data", "emptyDir": {}}));
        let mut v = json!({"name": "s", "secret": {"secretName": "x"}});
        default_volume(&mut v);
        assert_eq!(v, json!({"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}));
    }

    #[test]
    fn volume_errors() {
        let spec = json!({"volumes": [
            {"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}},
            {"name": "a", "emptyDir": {}},
            {"name": "Bad", "configMap": {}},
            {"name": "n"}
        ]});
        let (vols, errs) = validate_volumes(&spec, None, "spec.volumes");
        let msgs: Vec<String> = errs.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        assert!(
            msgs.contains(&"spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type".to_owned()),
            "{msgs:?}"
        );
        assert!(msgs.contains(&"spec.volumes[2].configMap.name: Required value".to_owned()), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("spec.volumes[2].name: Invalid value: \"Bad\"")), "{msgs:?}");
        assert!(msgs.contains(&"spec.volumes[3]: Required value: must specify a volume type".to_owned()), "{msgs:?}");
        assert!(vols.contains_key("a"));
    }
}
