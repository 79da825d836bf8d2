//! What the kubelet asks the runtime for, derived from the pod spec: the sandbox config (hostname, DNS,
//! cgroup parent, port mappings, namespaces, sysctls) and each container's config (command and args with
//! `$(VAR)` expansion, env with valueFrom/envFrom and service links, mounts, resources as cgroup limits,
//! securityContext, log path, labels). Pure functions over the pod, except reading the ConfigMaps and
//! Secrets that env refers to.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::KubeletConfig;

/// Why a container's config could not be made (the kubelet shows `CreateContainerConfigError` with this
/// message as the container's waiting reason, and retries).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// Upstream's message, e.g. `configmap "x" not found` or `couldn't find key k in ConfigMap ns/x`.
    #[error("{0}")]
    Invalid(String),
}

/// What a container's config is made from besides the pod spec.
pub(crate) struct ContainerContext<'a> {
    /// The pod.
    pub(crate) pod: &'a Pod,
    /// The container (regular or init) within it.
    pub(crate) container: &'a Container,
    /// The restart count this instance will have (its log file name, and an annotation).
    pub(crate) restart_count: i32,
    /// The pod's IPs as the sandbox got them (for `status.podIP` fieldRefs).
    pub(crate) pod_ips: &'a [String],
    /// Mounts for the container's volumeMounts (from the volume manager), plus the kubelet's own
    /// (etc-hosts, termination-log), already made.
    pub(crate) mounts: Vec<rkube_cri::api::Mount>,
    /// The image as the runtime resolved it (the `ImageSpec` image of the container config).
    pub(crate) image_ref: &'a str,
}

/// The sandbox config for `pod`'s `attempt`-th sandbox.
pub(crate) fn sandbox_config(
    pod: &Pod,
    config: &KubeletConfig,
    attempt: u32,
) -> Result<rkube_cri::api::PodSandboxConfig, ConfigError> {
    let _ = (pod, config, attempt);
    todo!("spec helper")
}

/// The config of one container (env resolved through `client` where it refers to ConfigMaps or Secrets).
pub(crate) async fn container_config(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    client: &kube::Client,
) -> Result<rkube_cri::api::ContainerConfig, ConfigError> {
    let _ = (ctx, config, client);
    todo!("spec helper")
}

/// The pod's `/etc/hosts` content (upstream's managed hosts file: localhost lines, the pod's IP with its
/// hostname and FQDN when it has a subdomain, and `hostAliases`).
pub(crate) fn etc_hosts(pod: &Pod, pod_ips: &[String], config: &KubeletConfig) -> String {
    let _ = (pod, pod_ips, config);
    todo!("spec helper")
}

/// The pod's QoS class (`Guaranteed`, `Burstable`, `BestEffort`) as upstream computes it.
pub(crate) fn qos_class(pod: &Pod) -> &'static str {
    let _ = pod;
    todo!("spec helper")
}

/// A stable hash of a container's spec (changes restart the container, as upstream).
pub(crate) fn container_hash(container: &Container) -> String {
    let _ = container;
    todo!("spec helper")
}

/// Labels put on every sandbox and container of the pod (see `rkube_cri::labels`).
pub(crate) fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let _ = pod;
    todo!("spec helper")
}
