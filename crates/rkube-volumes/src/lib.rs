//! Pod volumes on the node, prepared before containers start: emptyDir (disk or `medium: Memory` tmpfs),
//! hostPath (with its `type` checks), configMap, secret, downwardAPI and projected (the bound service-account
//! token, refreshed before it expires, and `kube-root-ca.crt`) written atomically (upstream's `..data`
//! symlink swap, so a ConfigMap change appears in running pods), and persistentVolumeClaims bound to
//! hostPath/local PersistentVolumes. Each pod's volumes live under `<pods_dir>/<uid>/volumes/`, laid out as
//! upstream's kubelet lays them out (`volumes/kubernetes.io~configmap/<name>`, ...).
//!
//! ConfigMaps, Secrets and the Node are read through a per-object TTL cache (`cache`); tokens through the
//! token manager (`token`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod atomic;
mod cache;
mod claim;
mod downward;
mod emptydir;
mod hostpath;
mod mounts;
mod payload;
mod setup;
mod teardown;
mod token;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Node, Pod, Secret};

use crate::cache::ObjectCache;
use crate::mounts::VolumePath;
use crate::token::TokenManager;

/// What stopped a pod's volumes from being set up (the kubelet reports it as a `FailedMount` event).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume could not be set up; the message is upstream's wording (`MountVolume.SetUp failed for volume
    /// "cfg" : configmap "x" not found`).
    #[error("{0}")]
    SetUp(String),
    /// A persistentVolumeClaim volume cannot be used yet (upstream's "failed to process volumes"); the pod
    /// waits. The message is upstream's: `error processing PVC default/data: PVC is not bound`.
    #[error("{message}")]
    Claim {
        /// The pod's volume naming the claim.
        volume: String,
        /// What is wrong with the claim.
        message: String,
    },
    /// A container's mounts cannot be made (a missing volume, a subPath leaving its volume, ...).
    #[error("{0}")]
    Mount(String),
    /// A pod's directory could not be removed.
    #[error("{0}")]
    Teardown(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a read ConfigMap, Secret or Node is trusted before it is read again (see `cache`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// Sets up, refreshes and tears down pod volumes on this node.
pub struct VolumeManager {
    client: kube::Client,
    pods_dir: PathBuf,
    node_name: String,
    config_maps: ObjectCache<ConfigMap>,
    secrets: ObjectCache<Secret>,
    nodes: ObjectCache<Node>,
    tokens: TokenManager,
    /// Set-up volumes by pod UID, then volume name (claims resolve through the API only once).
    pods: Mutex<HashMap<String, HashMap<String, VolumePath>>>,
}

impl VolumeManager {
    /// A manager keeping volumes under `pods_dir`, reading ConfigMaps, Secrets, PVCs and PVs and requesting
    /// tokens through `client` for pods of `node_name`.
    pub fn new(client: kube::Client, pods_dir: PathBuf, node_name: String) -> VolumeManager {
        VolumeManager::with_cache_ttl(client, pods_dir, node_name, DEFAULT_CACHE_TTL)
    }

    /// As [`Self::new`], trusting read ConfigMaps, Secrets and the Node for `ttl` (zero: read at every setup).
    pub fn with_cache_ttl(client: kube::Client, pods_dir: PathBuf, node_name: String, ttl: Duration) -> VolumeManager {
        VolumeManager {
            client,
            pods_dir,
            node_name,
            config_maps: ObjectCache::new(ttl),
            secrets: ObjectCache::new(ttl),
            nodes: ObjectCache::new(ttl),
            tokens: TokenManager::default(),
            pods: Mutex::new(HashMap::new()),
        }
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, VolumePath>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of the pod with `pod_uid` (`<pods_dir>/<uid>`).
    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.pods_dir.join(pod_uid)
    }

    /// Makes every volume of `pod` ready and its contents current (idempotent: called at each pod sync, so
    /// ConfigMap/Secret changes and token refreshes land in running pods). Every volume is tried; the first
    /// failure is returned.
    pub async fn setup(&self, pod: &Pod) -> Result<()> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
            return Err(Error::SetUp(format!("pod {:?} has no usable UID {uid:?}", pod.metadata.name)));
        }
        let known = self.pods().get(&uid).cloned();
        // A pod seen for the first time reads its objects fresh (upstream invalidates on RegisterPod).
        let fresh = known.is_none();
        let mut done = known.unwrap_or_default();
        let mut first_error = None;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if v.persistent_volume_claim.is_some() && done.contains_key(&v.name) {
                continue;
            }
            match self.setup_volume(pod, &uid, v, fresh).await {
                Ok(at) => {
                    done.insert(v.name.clone(), at);
                }
                Err(e) => {
                    tracing::debug!(pod = ?pod.metadata.name, volume = %v.name, error = %e, "volume setup failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        self.pods().insert(uid, done);
        first_error.map_or(Ok(()), Err)
    }

    /// The CRI mounts for `container` (its `volumeMounts`, with subPath and readOnly), after [`Self::setup`].
    /// `subPathExpr` sees the container's literal, fieldRef and resourceFieldRef env vars.
    pub fn mounts(&self, pod: &Pod, container: &Container) -> Result<Vec<rkube_cri::api::Mount>> {
        self.mounts_with_env(pod, container, &HashMap::new())
    }

    /// As [`Self::mounts`], with the container's environment as the kubelet computed it (configMapKeyRef,
    /// secretKeyRef, envFrom...) for `subPathExpr`.
    pub fn mounts_with_env(
        &self,
        pod: &Pod,
        container: &Container,
        env: &HashMap<String, String>,
    ) -> Result<Vec<rkube_cri::api::Mount>> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut volumes = self.pods().get(&uid).cloned().unwrap_or_default();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if !volumes.contains_key(&v.name)
                && let Some(at) = self.static_path(&uid, v)
            {
                volumes.insert(v.name.clone(), at);
            }
        }
        mounts::container_mounts(pod, container, &volumes, env).map_err(Error::Mount)
    }

    /// Removes every volume of the pod with this UID (unmounting tmpfs), once its containers are gone.
    pub async fn teardown(&self, pod_uid: &str) -> Result<()> {
        if pod_uid.is_empty() || pod_uid.contains('/') || pod_uid.starts_with('.') {
            return Err(Error::Teardown(format!("refusing to remove the pod directory of UID {pod_uid:?}")));
        }
        let dir = self.pod_dir(pod_uid);
        tokio::task::spawn_blocking(move || teardown::remove_pod_dir(&dir))
            .await
            .map_err(|e| Error::Teardown(e.to_string()))?
            .map_err(Error::Teardown)?;
        self.tokens.forget_pod(pod_uid);
        self.pods().remove(pod_uid);
        Ok(())
    }

    /// Tears down the directories under `pods_dir` of pods not in `active` (pods deleted while the agent was
    /// down); returns the UIDs removed. A directory that cannot be removed is logged and kept.
    pub async fn cleanup_orphans(&self, active: &HashSet<String>) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.pods_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Teardown(format!("reading {}: {e}", self.pods_dir.display()))),
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            if active.contains(&uid) || uid.starts_with('.') {
                continue;
            }
            match self.teardown(&uid).await {
                Ok(()) => removed.push(uid),
                Err(e) => tracing::warn!(pod_uid = %uid, error = %e, "removing an orphaned pod directory"),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manager whose client points nowhere: these paths never call the API.
    fn manager(dir: &std::path::Path) -> VolumeManager {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        VolumeManager::new(kube::Client::try_from(config).unwrap(), dir.to_owned(), "n".into())
    }

    #[tokio::test]
    async fn cleanup_orphans_removes_only_inactive_pod_dirs() {
        let t = tempfile::tempdir().unwrap();
        let vm = manager(t.path());
        for uid in ["live", "gone"] {
            std::fs::create_dir_all(t.path().join(uid).join("volumes/kubernetes.io~empty-dir/x")).unwrap();
        }
        let active = HashSet::from(["live".to_string()]);
        assert_eq!(vm.cleanup_orphans(&active).await.unwrap(), vec!["gone".to_string()]);
        assert!(t.path().join("live/volumes").is_dir());
        assert!(!t.path().join("gone").exists());
    }

    #[tokio::test]
    async fn teardown_refuses_paths_that_are_not_a_uid() {
        let t = tempfile::tempdir().unwrap();
        let vm = manager(&t.path().join("pods"));
        std::fs::create_dir_all(t.path().join("keep")).unwrap();
        for bad in ["", "../keep", "..", "a/b"] {
            assert!(matches!(vm.teardown(bad).await, Err(Error::Teardown(_))), "{bad:?}");
        }
        assert!(t.path().join("keep").is_dir());
    }

    #[tokio::test]
    async fn volumes_of_unknown_kinds_and_pods_without_uid_fail() {
        let t = tempfile::tempdir().unwrap();
        let vm = manager(t.path());
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p", "uid": "u1" },
            "spec": { "containers": [], "volumes": [{ "name": "nfs", "nfs": { "server": "x", "path": "/" } }] },
        }))
        .unwrap();
        let err = vm.setup(&pod).await.unwrap_err().to_string();
        assert_eq!(err, "MountVolume.SetUp failed for volume \"nfs\" : no volume plugin matched");
        let mut no_uid = pod.clone();
        no_uid.metadata.uid = None;
        assert!(vm.setup(&no_uid).await.is_err());
    }
}
