//! Persistent volumes and claims: CAPACITY, ACCESS MODES `RWO`, RECLAIM POLICY, STATUS, CLAIM, STORAGECLASS.

use serde_json::json;

use crate::Printer;
use crate::column;
use crate::descriptions::{
    PV_CAP, PV_CLAIM, PV_MODES, PV_RECLAIM, PV_VOLMODE, PVC_VOLMODE, PVC_VOLNAME, PVCS_CAP, PVCS_MODES, PVCS_PHASE,
    PVS_PHASE, PVS_REASON,
};
use crate::format::access_modes;
use crate::quantity::canonical;
use crate::value::{age, arr_at, deleting, has, name, opt_str, str_at};

/// The beta annotation that, when present, overrides `storageClassName` (upstream's
/// `GetPersistentVolumeClass`).
const BETA_CLASS: &str = "/metadata/annotations/volume.beta.kubernetes.io~1storage-class";

/// `<unset>` for a missing optional string, as upstream prints nil pointers.
fn or_unset(v: Option<&str>) -> String {
    v.unwrap_or("<unset>").to_owned()
}

/// `persistentvolumes`.
pub(crate) const PERSISTENT_VOLUMES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Capacity", PV_CAP),
            column::string("Access Modes", PV_MODES),
            column::string("Reclaim Policy", PV_RECLAIM),
            column::string("Status", PVS_PHASE),
            column::string("Claim", PV_CLAIM),
            column::string("StorageClass", "StorageClass of the pv"),
            column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
            column::string("Reason", PVS_REASON),
            column::age(),
            column::wide("VolumeMode", PV_VOLMODE),
        ]
    },
    cells: |o, now| {
        let claim = if has(o, "/spec/claimRef") {
            format!("{}/{}", str_at(o, "/spec/claimRef/namespace"), str_at(o, "/spec/claimRef/name"))
        } else {
            String::new()
        };
        // Defaulting gives reclaim policy Retain, phase Pending and volume mode Filesystem.
        let reclaim = non_empty(str_at(o, "/spec/persistentVolumeReclaimPolicy"), "Retain");
        let phase = if deleting(o) { "Terminating" } else { non_empty(str_at(o, "/status/phase"), "Pending") };
        let class = opt_str(o, BETA_CLASS).unwrap_or_else(|| str_at(o, "/spec/storageClassName"));
        vec![
            name(o),
            json!(canonical(o.pointer("/spec/capacity/storage"))),
            json!(access_modes(arr_at(o, "/spec/accessModes"))),
            json!(reclaim),
            json!(phase),
            json!(claim),
            json!(class),
            json!(or_unset(opt_str(o, "/spec/volumeAttributesClassName"))),
            json!(str_at(o, "/status/reason")),
            age(o, now),
            json!(non_empty(str_at(o, "/spec/volumeMode"), "Filesystem")),
        ]
    },
};

/// `persistentvolumeclaims`: capacity and access modes only once bound to a volume.
pub(crate) const PERSISTENT_VOLUME_CLAIMS: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Status", PVCS_PHASE),
            column::string("Volume", PVC_VOLNAME),
            column::string("Capacity", PVCS_CAP),
            column::string("Access Modes", PVCS_MODES),
            column::string("StorageClass", "StorageClass of the pvc"),
            column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
            column::age(),
            column::wide("VolumeMode", PVC_VOLMODE),
        ]
    },
    cells: |o, now| {
        let volume = str_at(o, "/spec/volumeName");
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (canonical(o.pointer("/status/capacity/storage")), access_modes(arr_at(o, "/status/accessModes")))
        };
        let phase = if deleting(o) { "Terminating" } else { non_empty(str_at(o, "/status/phase"), "Pending") };
        let class = opt_str(o, BETA_CLASS).unwrap_or_else(|| str_at(o, "/spec/storageClassName"));
        vec![
            name(o),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(class),
            json!(or_unset(opt_str(o, "/spec/volumeAttributesClassName"))),
            age(o, now),
            json!(non_empty(str_at(o, "/spec/volumeMode"), "Filesystem")),
        ]
    },
};

/// `s`, or `default` (the value upstream's defaulting would have stored) when empty.
fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn persistent_volume_and_claim() {
        let now = at("2024-01-01T00:00:00Z");
        let pv = json!({
            "metadata": {"name": "pv1", "creationTimestamp": ago(now, 60)},
            "spec": {"capacity": {"storage": "10240Mi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local",
                     "claimRef": {"namespace": "default", "name": "data"}},
            "status": {"phase": "Bound"}
        });
        assert_eq!(
            crate::cells("", "persistentvolumes", &pv, now),
            vec![
                json!("pv1"),
                json!("10Gi"),
                json!("RWO"),
                json!("Delete"),
                json!("Bound"),
                json!("default/data"),
                json!("local"),
                json!("<unset>"),
                json!(""),
                json!("60s"),
                json!("Filesystem"),
            ]
        );
        let pending = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "local"}, "status": {"phase": "Pending"}});
        assert_eq!(
            crate::cells("", "persistentvolumeclaims", &pending, now),
            vec![
                json!("data"),
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("local"),
                json!("<unset>"),
                json!("<unknown>"),
                json!("Filesystem"),
            ]
        );
        let bound = json!({
            "metadata": {"name": "data", "deletionTimestamp": ago(now, 1),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"volumeName": "pv1", "storageClassName": "local", "volumeMode": "Block"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadOnlyMany"]}
        });
        let cells = crate::cells("", "persistentvolumeclaims", &bound, now);
        assert_eq!(cells[1..6], [json!("Terminating"), json!("pv1"), json!("1Gi"), json!("ROX,RWX"), json!("beta")]);
        assert_eq!(cells[8], json!("Block"));
    }
}
