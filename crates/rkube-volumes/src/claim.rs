//! persistentVolumeClaim volumes: the claim must be Bound to a PV that claims it back; the PV's `hostPath`
//! (type-checked) or `local.path` is handed to the runtime as the mount's host path (a bind mount by the
//! runtime, nothing mounted here). Errors in upstream's desired-state populator wording.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod};
use kube::api::Api;

use crate::mounts::VolumePath;
use crate::setup::{api_message, set_up_failed};
use crate::{Error, VolumeManager, hostpath};

impl VolumeManager {
    /// Resolves the claim of volume `volume` to its PV's path.
    pub(crate) async fn setup_claim(
        &self,
        pod: &Pod,
        volume: &str,
        src: &PersistentVolumeClaimVolumeSource,
    ) -> Result<VolumePath, Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let claim_err = |m: String| Error::Claim {
            volume: volume.to_owned(),
            message: format!("error processing PVC {ns}/{}: {m}", src.claim_name),
        };
        let pvc = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns)
            .get(&src.claim_name)
            .await
            .map_err(|e| claim_err(format!("failed to fetch PVC from API server: {}", api_message(e))))?;
        if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            return Err(claim_err("PVC is not bound".into()));
        }
        let pv_name = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
        if pv_name.is_empty() {
            return Err(claim_err("PVC has empty pvc.Spec.VolumeName".into()));
        }
        let pv = Api::<PersistentVolume>::all(self.client.clone())
            .get(&pv_name)
            .await
            .map_err(|e| claim_err(format!("failed to fetch PV {pv_name} from API server: {}", api_message(e))))?;
        let spec = pv.spec.unwrap_or_default();
        let Some(claim_ref) = &spec.claim_ref else {
            return Err(claim_err(format!(
                "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
            )));
        };
        let (pv_uid, claim_uid) = (claim_ref.uid.clone().unwrap_or_default(), pvc.metadata.uid.unwrap_or_default());
        if pv_uid != claim_uid {
            return Err(claim_err(format!(
                "found PV object {pv_name} but its pv.Spec.ClaimRef.UID ({pv_uid}) does not point to claim.UID ({claim_uid})"
            )));
        }
        // From here upstream names the volume by its PV.
        let path = if let Some(h) = &spec.host_path {
            hostpath::check_type(std::path::Path::new(&h.path), h.type_.as_deref())
                .map_err(|m| set_up_failed(&pv_name, m))?;
            PathBuf::from(&h.path)
        } else if let Some(l) = &spec.local {
            let p = PathBuf::from(&l.path);
            std::fs::metadata(&p).map_err(|e| set_up_failed(&pv_name, format!("stat {}: {e}", l.path)))?;
            p
        } else {
            return Err(set_up_failed(
                &pv_name,
                "no volume plugin matched (only hostPath and local volumes are served)",
            ));
        };
        Ok(VolumePath { path, read_only: src.read_only.unwrap_or(false) })
    }
}
