//! What the kubelet asks the runtime for, derived from the pod spec: the sandbox config (hostname, DNS,
//! cgroup parent, port mappings, namespaces, sysctls) and each container's config (command and args with
//! `$(VAR)` expansion, env with valueFrom/envFrom and service links, mounts, resources as cgroup limits,
//! securityContext, log path, labels). Pure functions over the pod, except reading the ConfigMaps,
//! Secrets and Services that env refers to (`lookup`) and the host's resolv.conf and /etc/hosts.

// Tests unwrap their fixtures (lib.rs is not ours to set this crate-wide).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod container;
mod dns;
mod env;
mod expand;
mod hosts;
mod labels;
mod lookup;
mod qos;
mod quantity;
mod resources;
mod sandbox;
mod security;
#[cfg(test)]
mod testutil;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::KubeletConfig;

pub(crate) use env::EnvSources;

/// Why a container's config could not be made (the kubelet shows `CreateContainerConfigError` with this
/// message as the container's waiting reason, and retries).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// Upstream's message, e.g. `configmap "x" not found` or `couldn't find key k in ConfigMap ns/x`.
    #[error("{0}")]
    Invalid(String),
}

/// Something upstream reports as a Warning event on the pod while making a config (the config is still
/// made): e.g. `DNSConfigForming`, `MissingClusterDNS`, `InvalidEnvironmentVariableNames`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Warning {
    /// The event reason.
    pub(crate) reason: &'static str,
    /// The event message.
    pub(crate) message: String,
}

impl Warning {
    fn new(reason: &'static str, message: String) -> Self {
        Warning { reason, message }
    }
}

/// What the kubelet knows of its machine that container configs depend on.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeResources {
    /// The machine's memory in bytes: burstable containers' OOM scores are relative to it.
    pub(crate) memory_capacity: i64,
    /// The node's allocatable resources (`status.allocatable`): what `resourceFieldRef` reports as the
    /// limit of a container without one.
    pub(crate) allocatable: BTreeMap<String, Quantity>,
}

impl NodeResources {
    /// From the Node object the agent registered (`status.capacity.memory`, `status.allocatable`).
    // Not called yet: the pod workers detect the machine; the Node's allocatable adds ephemeral storage.
    #[allow(dead_code)]
    pub(crate) fn from_node(node: &Node) -> Self {
        let status = node.status.as_ref();
        NodeResources {
            memory_capacity: quantity::value_of(status.and_then(|s| s.capacity.as_ref()), "memory"),
            allocatable: status.and_then(|s| s.allocatable.clone()).unwrap_or_default(),
        }
    }

    /// From this machine: MemTotal of /proc/meminfo and the CPUs this process may use (allocatable
    /// ephemeral storage is left out: only the Node object knows it).
    pub(crate) fn detect() -> Self {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        NodeResources {
            memory_capacity: memory,
            allocatable: BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpus.to_string())),
                ("memory".to_owned(), Quantity(memory.to_string())),
            ]),
        }
    }
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
    /// The image's status from the runtime (`ImageStatus`), when known: its user (`uid`/`username`) is
    /// the container's user when the securityContext sets none, and is checked against `runAsNonRoot`.
    pub(crate) image: Option<&'a rkube_cri::api::Image>,
    /// The machine's memory and the node's allocatable resources.
    pub(crate) node: &'a NodeResources,
}

/// `name_namespace(uid)`, as upstream's `format.Pod` names a pod in messages.
pub(crate) fn pod_full_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}

// The seam's original entry point, kept for its contract; the pod workers call the `_and_warnings` form.
#[allow(dead_code)]
/// The sandbox config for `pod`'s `attempt`-th sandbox (warnings are logged; see
/// [`sandbox_config_and_warnings`] to turn them into events).
pub(crate) fn sandbox_config(
    pod: &Pod,
    config: &KubeletConfig,
    attempt: u32,
) -> Result<rkube_cri::api::PodSandboxConfig, ConfigError> {
    let (sandbox, warnings) = sandbox_config_and_warnings(pod, config, attempt)?;
    log_warnings(pod, &warnings);
    Ok(sandbox)
}

/// The sandbox config and what upstream would report about it as Warning events on the pod. Reads the
/// host's resolv.conf (`config.resolv_conf`).
pub(crate) fn sandbox_config_and_warnings(
    pod: &Pod,
    config: &KubeletConfig,
    attempt: u32,
) -> Result<(rkube_cri::api::PodSandboxConfig, Vec<Warning>), ConfigError> {
    let host = dns::read_host_dns(&config.resolv_conf)?;
    let mut warnings = Vec::new();
    let sandbox = sandbox::sandbox_config(pod, config, attempt, &host, &mut warnings)?;
    Ok((sandbox, warnings))
}

// The seam's original entry point, kept for its contract; the pod workers call the `_and_warnings` form.
#[allow(dead_code)]
/// The config of one container (env resolved through `client` where it refers to ConfigMaps, Secrets or
/// Services; warnings are logged, see [`container_config_and_warnings`]).
pub(crate) async fn container_config(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    client: &kube::Client,
) -> Result<rkube_cri::api::ContainerConfig, ConfigError> {
    let (container, warnings) = container_config_and_warnings(ctx, config, client).await?;
    log_warnings(ctx.pod, &warnings);
    Ok(container)
}

/// The config of one container and what upstream would report about it as Warning events on the pod.
pub(crate) async fn container_config_and_warnings(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    client: &kube::Client,
) -> Result<(rkube_cri::api::ContainerConfig, Vec<Warning>), ConfigError> {
    let sources = lookup::env_sources(client, ctx.pod, ctx.container).await?;
    let mut warnings = Vec::new();
    let container = container_config_from(ctx, config, &sources, &mut warnings)?;
    Ok((container, warnings))
}

/// The config of one container given the objects its env refers to (the pure part of
/// [`container_config`]).
pub(crate) fn container_config_from(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    sources: &EnvSources,
    warnings: &mut Vec<Warning>,
) -> Result<rkube_cri::api::ContainerConfig, ConfigError> {
    let envs = env::resolve_env(ctx, config, sources, warnings)?;
    container::container_config(ctx, config, envs)
}

fn log_warnings(pod: &Pod, warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!(pod = %pod_full_name(pod), reason = w.reason, "{}", w.message);
    }
}

/// The pod's `/etc/hosts` content (upstream's managed hosts file: localhost lines, the pod's IP with its
/// hostname and FQDN when it has a subdomain, and `hostAliases`). A host-network pod gets the node's
/// /etc/hosts under a header, plus its `hostAliases`.
pub(crate) fn etc_hosts(pod: &Pod, pod_ips: &[String], config: &KubeletConfig) -> String {
    if pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false) {
        let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_else(|e| {
            tracing::warn!(pod = %pod_full_name(pod), "cannot read the node's /etc/hosts: {e}");
            String::new()
        });
        return hosts::host_network_hosts(pod, &node_hosts);
    }
    let (hostname, domain) = hosts::hostname_and_domain(pod, config).unwrap_or_else(|e| {
        // The sandbox config fails on the same error first; the pod name is what upstream would fall to.
        tracing::warn!(pod = %pod_full_name(pod), "{e}");
        (pod.metadata.name.clone().unwrap_or_default(), String::new())
    });
    hosts::managed_hosts(pod, pod_ips, &hostname, &domain)
}

/// The pod's QoS class (`Guaranteed`, `Burstable`, `BestEffort`) as upstream computes it.
pub(crate) fn qos_class(pod: &Pod) -> &'static str {
    qos::qos_class(pod)
}

/// A stable hash of a container's spec (changes restart the container, as upstream): of its name and
/// image only, as upstream since 1.31 (see `labels::container_hash`).
pub(crate) fn container_hash(container: &Container) -> String {
    labels::container_hash(container)
}

// Part of the seam's contract; the sandbox and container labels are made with it in `labels`.
#[allow(dead_code)]
/// Labels put on every sandbox and container of the pod (see `rkube_cri::labels`).
pub(crate) fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    labels::pod_labels(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_resources_from_node() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"capacity": {"memory": "4Gi", "cpu": "2"}, "allocatable": {"memory": "3Gi", "cpu": "2"}}
        }))
        .unwrap();
        let r = NodeResources::from_node(&node);
        assert_eq!(r.memory_capacity, 4 << 30);
        assert_eq!(r.allocatable["memory"], Quantity("3Gi".into()));
        let detected = NodeResources::detect();
        assert!(detected.memory_capacity > 0);
        assert!(detected.allocatable.contains_key("cpu"));
    }

    #[test]
    fn sandbox_reads_the_host_resolv_conf() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = testutil::config();
        cfg.resolv_conf = dir.path().join("resolv.conf");
        std::fs::write(&cfg.resolv_conf, "nameserver 192.168.0.1\nsearch corp.example\n").unwrap();
        let (sandbox, warnings) = sandbox_config_and_warnings(&testutil::pod(json!({})), &cfg, 0).unwrap();
        assert!(warnings.is_empty());
        let dns = sandbox.dns_config.unwrap();
        assert_eq!(dns.searches.last().map(String::as_str), Some("corp.example"));
        let p = testutil::pod(json!({"spec": {"dnsPolicy": "Default"}}));
        assert_eq!(sandbox_config(&p, &cfg, 0).unwrap().dns_config.unwrap().servers, ["192.168.0.1"]);

        cfg.resolv_conf = dir.path().join("missing");
        let err = sandbox_config_and_warnings(&testutil::pod(json!({})), &cfg, 0).unwrap_err();
        assert!(err.to_string().starts_with("failed to read resolv.conf"), "{err}");
        assert_eq!(pod_labels(&p).len(), 3);
    }

    #[test]
    fn full_name() {
        assert_eq!(pod_full_name(&testutil::pod(json!({}))), "web_ns(1234-5678)");
    }

    #[test]
    fn etc_hosts_for_pods() {
        let cfg = testutil::config();
        let p = testutil::pod(json!({"spec": {"hostname": "h", "subdomain": "s"}}));
        let hosts = etc_hosts(&p, &["172.30.0.9".to_owned()], &cfg);
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n"));
        assert!(hosts.ends_with("172.30.0.9\th.s.ns.svc.cluster.local\th\n"));
        let host_net = etc_hosts(&testutil::pod(json!({"spec": {"hostNetwork": true}})), &[], &cfg);
        assert!(host_net.starts_with("# Kubernetes-managed hosts file (host network).\n"));
    }
}
