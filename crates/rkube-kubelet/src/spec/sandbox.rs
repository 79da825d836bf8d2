//! The pod sandbox config (upstream's `generatePodSandboxConfig` and `generatePodSandboxLinuxConfig`):
//! metadata, hostname, log directory, DNS, port mappings, labels, the QoS cgroup parent and the sandbox's
//! security context (namespaces, user, groups, sysctls).

use k8s_openapi::api::core::v1::Pod;
use rkube_cri::api::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PortMapping, Protocol, SecurityProfile, UserNamespace, security_profile::ProfileType,
};

use super::dns::{HostDns, pod_dns_config};
use super::hosts::{hostname_and_domain, kernel_hostname};
use super::labels::sandbox_labels;
use super::qos::{BEST_EFFORT, BURSTABLE, qos_class};
use super::security::{int64, selinux_options};
use super::{ConfigError, Warning};
use crate::KubeletConfig;

/// The pod's log directory: `<pod_logs_dir>/<namespace>_<name>_<uid>`.
pub(crate) fn log_directory(pod: &Pod, config: &KubeletConfig) -> String {
    let m = &pod.metadata;
    let dir = format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    );
    config.pod_logs_dir.join(dir).to_string_lossy().into_owned()
}

/// The pod's cgroup (the sandbox's cgroup parent) under the QoS tiers of `/kubepods`: Guaranteed pods sit
/// directly under it, the others under `burstable` or `besteffort`. With the systemd driver the path is
/// made of slices, the UID's dashes becoming underscores (systemd's escaping), as upstream's `ToSystemd`.
pub(crate) fn cgroup_parent(pod: &Pod, systemd: bool) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let tier = match qos_class(pod) {
        BURSTABLE => Some("burstable"),
        BEST_EFFORT => Some("besteffort"),
        _ => None,
    };
    if !systemd {
        return match tier {
            Some(t) => format!("/kubepods/{t}/pod{uid}"),
            None => format!("/kubepods/pod{uid}"),
        };
    }
    let mut parts = vec!["kubepods".to_owned()];
    parts.extend(tier.map(str::to_owned));
    parts.push(format!("pod{}", uid.replace('-', "_")));
    // Each slice nests in its prefixes: /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod….slice
    let mut path = String::new();
    for i in 1..=parts.len() {
        path.push('/');
        path.push_str(&parts[..i].join("-"));
        path.push_str(".slice");
    }
    path
}

fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => Protocol::Udp as i32,
        Some("SCTP") => Protocol::Sctp as i32,
        _ => Protocol::Tcp as i32,
    }
}

/// Every container port (upstream's `MakePortMappings`: the runtime maps those with a host port; a port
/// repeated under the same name in one container is listed once).
pub(crate) fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let mut names = std::collections::BTreeSet::new();
        for p in c.ports.iter().flatten() {
            let host_ip = p.host_ip.clone().unwrap_or_default();
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let name = match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(n) => n.to_owned(),
                None => {
                    let family = if host_ip.is_empty() {
                        "any"
                    } else if host_ip.contains(':') {
                        "v6"
                    } else {
                        "v4"
                    };
                    format!("{family}-{proto}-{host_ip}:{}:{}", p.container_port, p.host_port.unwrap_or(0))
                }
            };
            if !names.insert(name) {
                continue;
            }
            out.push(PortMapping {
                protocol: protocol(p.protocol.as_deref()),
                container_port: p.container_port,
                host_port: p.host_port.unwrap_or(0),
                host_ip,
            });
        }
    }
    out
}

/// The pod's namespaces (upstream's `NamespacesForPod`): network and IPC of the pod unless host ones
/// are asked for; PID per container unless `hostPID` or `shareProcessNamespace`; the node's user
/// namespace unless `hostUsers: false` (which rkube does not support yet, so the node's too).
pub(crate) fn namespace_options(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let host_or_pod = |host: bool| if host { NamespaceMode::Node as i32 } else { NamespaceMode::Pod as i32 };
    let pid = if flag(|s| s.host_pid) {
        NamespaceMode::Node
    } else if flag(|s| s.share_process_namespace) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: host_or_pod(flag(|s| s.host_network)),
        pid: pid as i32,
        ipc: host_or_pod(flag(|s| s.host_ipc)),
        target_id: String::new(),
        userns_options: Some(UserNamespace { mode: NamespaceMode::Node as i32, uids: vec![], gids: vec![] }),
    }
}

/// Whether any container of the pod is privileged (the sandbox must then be too).
fn has_privileged_container(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
    let ephemeral = spec.into_iter().flat_map(|s| s.ephemeral_containers.iter().flatten());
    containers
        .map(|c| c.security_context.as_ref())
        .chain(ephemeral.map(|c| c.security_context.as_ref()))
        .any(|sc| sc.and_then(|sc| sc.privileged).unwrap_or(false))
}

/// The supplemental groups of the pod's processes: `fsGroup` first, then `supplementalGroups`.
pub(crate) fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let mut groups: Vec<i64> = sc.and_then(|sc| sc.fs_group).into_iter().collect();
    groups.extend(sc.and_then(|sc| sc.supplemental_groups.clone()).unwrap_or_default());
    groups
}

/// `supplementalGroupsPolicy` as CRI numbers it (Merge 0, Strict 1).
pub(crate) fn supplemental_groups_policy(pod: &Pod) -> i32 {
    let sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    i32::from(sc.and_then(|sc| sc.supplemental_groups_policy.as_deref()) == Some("Strict"))
}

fn linux_config(pod: &Pod, config: &KubeletConfig) -> LinuxPodSandboxConfig {
    let sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    LinuxPodSandboxConfig {
        cgroup_parent: cgroup_parent(pod, config.systemd_cgroup),
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(namespace_options(pod)),
            selinux_options: sc.and_then(|sc| sc.se_linux_options.as_ref()).map(selinux_options),
            run_as_user: sc.and_then(|sc| sc.run_as_user).map(int64),
            run_as_group: sc.and_then(|sc| sc.run_as_group).map(int64),
            supplemental_groups: supplemental_groups(pod),
            supplemental_groups_policy: supplemental_groups_policy(pod),
            privileged: has_privileged_container(pod),
            // The sandbox (pause) always runs under the runtime's default profile, whatever the pod asks
            // for its containers, as upstream.
            seccomp: Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        }),
        sysctls: sc
            .and_then(|sc| sc.sysctls.as_ref())
            .into_iter()
            .flatten()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect(),
        overhead: None,
        resources: None,
    }
}

/// The sandbox config. A host-network sandbox gets no hostname: the runtime gives it the node's.
pub(crate) fn sandbox_config(
    pod: &Pod,
    config: &KubeletConfig,
    attempt: u32,
    host: &HostDns,
    warnings: &mut Vec<Warning>,
) -> Result<PodSandboxConfig, ConfigError> {
    let m = &pod.metadata;
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    let hostname = if host_network {
        String::new()
    } else {
        let (hostname, domain) = hostname_and_domain(pod, config)?;
        kernel_hostname(pod, &hostname, &domain)?
    };
    Ok(PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(pod, config),
        dns_config: Some(pod_dns_config(pod, config, host, warnings)),
        port_mappings: port_mappings(pod),
        labels: sandbox_labels(pod),
        annotations: m.annotations.clone().unwrap_or_default().into_iter().collect(),
        linux: Some(linux_config(pod, config)),
        windows: None,
    })
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
