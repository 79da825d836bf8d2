//! Setting up one volume of a pod, by kind: emptyDir, hostPath, configMap, secret, downwardAPI, projected
//! (persistentVolumeClaim is in `claim`). Each returns where the volume is on the host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ProjectedVolumeSource, Secret, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;

use crate::atomic::{self, Payload};
use crate::mounts::VolumePath;
use crate::payload::{self, DEFAULT_MODE, Source};
use crate::token::TokenKey;
use crate::{Error, VolumeManager, emptydir, hostpath};

/// Upstream's plugin directory names under `<pod>/volumes/`.
pub(crate) const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
pub(crate) const CONFIG_MAP: &str = "kubernetes.io~configmap";
pub(crate) const SECRET: &str = "kubernetes.io~secret";
pub(crate) const DOWNWARD_API: &str = "kubernetes.io~downward-api";
pub(crate) const PROJECTED: &str = "kubernetes.io~projected";

/// The TokenRequest lifetime when a projection names none (the API's default).
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

/// Upstream's event text for a failed volume.
pub(crate) fn set_up_failed(volume: &str, message: impl std::fmt::Display) -> Error {
    Error::SetUp(format!("MountVolume.SetUp failed for volume {volume:?} : {message}"))
}

impl VolumeManager {
    /// `<pods_dir>/<uid>/volumes/<plugin>/<name>`.
    pub(crate) fn volume_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.pods_dir.join(uid).join("volumes").join(plugin).join(name)
    }

    /// Where a volume lives without asking the API (every kind but claims), `None` for claims and unknowns.
    pub(crate) fn static_path(&self, uid: &str, v: &Volume) -> Option<VolumePath> {
        if !valid_name(&v.name) {
            return None;
        }
        let at = |plugin| Some(VolumePath { path: self.volume_dir(uid, plugin, &v.name), read_only: true });
        if v.empty_dir.is_some() {
            Some(VolumePath { path: self.volume_dir(uid, EMPTY_DIR, &v.name), read_only: false })
        } else if let Some(h) = &v.host_path {
            Some(VolumePath { path: PathBuf::from(&h.path), read_only: false })
        } else if v.config_map.is_some() {
            at(CONFIG_MAP)
        } else if v.secret.is_some() {
            at(SECRET)
        } else if v.downward_api.is_some() {
            at(DOWNWARD_API)
        } else if v.projected.is_some() {
            at(PROJECTED)
        } else {
            None
        }
    }

    /// Sets up `v` of `pod`; `fresh`: read referenced objects from the API, not the cache.
    pub(crate) async fn setup_volume(
        &self,
        pod: &Pod,
        uid: &str,
        v: &Volume,
        fresh: bool,
    ) -> Result<VolumePath, Error> {
        let name = &v.name;
        let fail = |m: String| set_up_failed(name, m);
        // The API validates names as DNS labels; a name that is not one must not reach a path join.
        if !valid_name(name) {
            return Err(fail(format!("invalid volume name {name:?}")));
        }
        if let Some(claim) = &v.persistent_volume_claim {
            return self.setup_claim(pod, name, claim).await;
        }
        let Some(at) = self.static_path(uid, v) else {
            return Err(fail("no volume plugin matched".into()));
        };
        if let Some(e) = &v.empty_dir {
            let medium = e.medium.as_deref().unwrap_or("");
            if !matches!(medium, "" | "Memory") {
                return Err(fail(format!("emptyDir medium {medium:?} is not supported on this node")));
            }
            let size = e.size_limit.as_ref().and_then(payload_size).filter(|s| *s > 0);
            emptydir::setup(&at.path, medium == "Memory", size).map_err(fail)?;
            if let Some(g) = fs_group(pod) {
                emptydir::own_root(&at.path, g).map_err(|e| fail(e.to_string()))?;
            }
        } else if let Some(h) = &v.host_path {
            hostpath::check_type(&at.path, h.type_.as_deref()).map_err(fail)?;
        } else {
            let payload = self.payload(pod, v, fresh).await.map_err(fail)?;
            // As upstream's wrapped emptyDirs: secrets, downwardAPI and projected volumes (tokens) live on a
            // tmpfs and never reach the disk; configMaps on the disk.
            emptydir::setup(&at.path, v.config_map.is_none(), None).map_err(fail)?;
            if atomic::write(&at.path, &payload, fs_group(pod)).map_err(|e| fail(e.to_string()))? {
                tracing::debug!(volume = %name, pod = ?pod.metadata.name, "volume contents updated");
            }
        }
        Ok(at)
    }

    /// The files of a configMap, secret, downwardAPI or projected volume.
    async fn payload(&self, pod: &Pod, v: &Volume, fresh: bool) -> Result<Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        if let Some(c) = &v.config_map {
            let mode = c.default_mode.unwrap_or(DEFAULT_MODE);
            let optional = c.optional.unwrap_or(false);
            let data = match self.config_map(ns, &c.name, fresh).await? {
                Some(cm) => payload::configmap_data(&cm),
                None if optional => BTreeMap::new(),
                None => return Err(format!("configmap {:?} not found", c.name)),
            };
            payload::key_payload(Source::ConfigMap, &data, c.items.as_deref(), mode, optional)
        } else if let Some(s) = &v.secret {
            let mode = s.default_mode.unwrap_or(DEFAULT_MODE);
            let optional = s.optional.unwrap_or(false);
            let name = s.secret_name.as_deref().unwrap_or_default();
            let data = match self.secret(ns, name, fresh).await? {
                Some(sec) => payload::secret_data(&sec),
                None if optional => BTreeMap::new(),
                None => return Err(format!("secret {name:?} not found")),
            };
            payload::key_payload(Source::Secret, &data, s.items.as_deref(), mode, optional)
        } else if let Some(d) = &v.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            let alloc = self.allocatable(payload::needs_allocatable(items), fresh).await;
            payload::downward_payload(pod, items, d.default_mode.unwrap_or(DEFAULT_MODE), alloc.as_ref())
        } else if let Some(p) = &v.projected {
            self.projected(pod, p, fresh).await
        } else {
            Ok(Payload::new())
        }
    }

    /// A projected volume: every source into one payload; errors of all sources together, as upstream.
    async fn projected(&self, pod: &Pod, p: &ProjectedVolumeSource, fresh: bool) -> Result<Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        let mut all = Payload::new();
        let mut errors = Vec::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(c) = &src.config_map {
                let optional = c.optional.unwrap_or(false);
                match self.config_map(ns, &c.name, fresh).await {
                    Ok(Some(cm)) => {
                        let data = payload::configmap_data(&cm);
                        payload::key_payload(Source::ConfigMap, &data, c.items.as_deref(), mode, optional)
                    }
                    Ok(None) if optional => Ok(Payload::new()),
                    Ok(None) => Err(format!("configmap {:?} not found", c.name)),
                    Err(e) => Err(e),
                }
            } else if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                match self.secret(ns, &s.name, fresh).await {
                    Ok(Some(sec)) => {
                        let data = payload::secret_data(&sec);
                        payload::key_payload(Source::Secret, &data, s.items.as_deref(), mode, optional)
                    }
                    Ok(None) if optional => Ok(Payload::new()),
                    Ok(None) => Err(format!("secret {:?} not found", s.name)),
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &src.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                let alloc = self.allocatable(payload::needs_allocatable(items), fresh).await;
                payload::downward_payload(pod, items, mode, alloc.as_ref())
            } else if let Some(t) = &src.service_account_token {
                self.token(pod, t.audience.as_deref(), t.expiration_seconds).await.map(|token| {
                    let file = atomic::FileProjection { data: token.into_bytes(), mode: mode as u32 & 0o7777 };
                    Payload::from([(t.path.clone(), file)])
                })
            } else {
                // clusterTrustBundle (a beta feature, off by default upstream) is not served by this node.
                tracing::debug!(pod = ?pod.metadata.name, "skipping an unsupported projected volume source");
                Ok(Payload::new())
            };
            match part {
                Ok(files) => all.extend(files),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(all),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    async fn token(&self, pod: &Pod, audience: Option<&str>, seconds: Option<i64>) -> Result<String, String> {
        let spec = pod.spec.as_ref();
        let key = TokenKey {
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            service_account: spec
                .and_then(|s| s.service_account_name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            audiences: audience.filter(|a| !a.is_empty()).map(|a| vec![a.to_owned()]).unwrap_or_default(),
            expiration_seconds: seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        self.tokens.get(&self.client, &key).await
    }

    async fn config_map(&self, ns: &str, name: &str, fresh: bool) -> Result<Option<Arc<ConfigMap>>, String> {
        let api = Api::namespaced(self.client.clone(), ns);
        self.config_maps.get(api, ns, name, fresh).await.map_err(api_message)
    }

    async fn secret(&self, ns: &str, name: &str, fresh: bool) -> Result<Option<Arc<Secret>>, String> {
        let api = Api::namespaced(self.client.clone(), ns);
        self.secrets.get(api, ns, name, fresh).await.map_err(api_message)
    }

    /// The node's allocatable resources, for resource limits a container leaves unset (read only when needed).
    async fn allocatable(&self, needed: bool, fresh: bool) -> Option<BTreeMap<String, Quantity>> {
        if !needed {
            return None;
        }
        let api: Api<Node> = Api::all(self.client.clone());
        match self.nodes.get(api, "", &self.node_name, fresh).await {
            Ok(node) => node.and_then(|n| n.status.as_ref().and_then(|s| s.allocatable.clone())),
            Err(e) => {
                tracing::warn!(node = %self.node_name, error = %e, "reading the node's allocatable resources");
                None
            }
        }
    }
}

/// The message of an API error as upstream prints it (the Status message, not kube-rs's wrapping).
pub(crate) fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    }
}

/// The pod's `securityContext.fsGroup`: the group its volumes belong to.
fn fs_group(pod: &Pod) -> Option<u32> {
    let g = pod.spec.as_ref()?.security_context.as_ref()?.fs_group?;
    u32::try_from(g).ok()
}

/// A volume name usable as a path component (the API validates names as DNS labels; this is the guard for
/// one that did not come through it).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.')
}

/// A size limit in whole bytes.
fn payload_size(q: &Quantity) -> Option<u64> {
    crate::downward::parse_quantity(&q.0).map(|v| v.ceil() as u64)
}
