//! Pod volumes on the node, prepared before containers start: emptyDir (disk or `medium: Memory` tmpfs),
//! hostPath (with its `type` checks), configMap, secret, downwardAPI and projected (the bound service-account
//! token, refreshed before it expires, and `kube-root-ca.crt`) written atomically (upstream's `..data`
//! symlink swap, so a ConfigMap change appears in running pods), and persistentVolumeClaims bound to
//! hostPath/local PersistentVolumes. Each pod's volumes live under `<pods_dir>/<uid>/volumes/`.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};

/// What stopped a pod's volumes from being set up (the kubelet reports it as a `FailedMount` event).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume could not be set up; the message is upstream's wording (`MountVolume.SetUp failed for volume
    /// "cfg" : configmap "x" not found`).
    #[error("{0}")]
    SetUp(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sets up, refreshes and tears down pod volumes on this node.
pub struct VolumeManager {
    _pods_dir: PathBuf,
}

impl VolumeManager {
    /// A manager keeping volumes under `pods_dir`, reading ConfigMaps, Secrets, PVCs and PVs and requesting
    /// tokens through `client` for pods of `node_name`.
    pub fn new(client: kube::Client, pods_dir: PathBuf, node_name: String) -> VolumeManager {
        let _ = (client, node_name);
        VolumeManager { _pods_dir: pods_dir }
    }

    /// Makes every volume of `pod` ready and its contents current (idempotent: called at each pod sync, so
    /// ConfigMap/Secret changes and token refreshes land in running pods).
    pub async fn setup(&self, pod: &Pod) -> Result<()> {
        let _ = pod;
        todo!("rkube-volumes helper")
    }

    /// The CRI mounts for `container` (its `volumeMounts`, with subPath and readOnly), after [`Self::setup`].
    pub fn mounts(&self, pod: &Pod, container: &Container) -> Result<Vec<rkube_cri::api::Mount>> {
        let _ = (pod, container);
        todo!("rkube-volumes helper")
    }

    /// Removes every volume of the pod with this UID (unmounting tmpfs), once its containers are gone.
    pub async fn teardown(&self, pod_uid: &str) -> Result<()> {
        let _ = pod_uid;
        todo!("rkube-volumes helper")
    }
}
