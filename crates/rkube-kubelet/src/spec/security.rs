//! A container's Linux security context (upstream's `determineEffectiveSecurityContext`): the container's
//! securityContext over the pod's, the image's user when neither names one, `runAsNonRoot` checks,
//! capabilities by name as written (the runtime adds `CAP_`), seccomp and AppArmor profiles, groups,
//! namespaces, `no_new_privs`, and the default masked and read-only /proc paths.

use k8s_openapi::api::core::v1::{Container, Pod, SELinuxOptions, SecurityContext};
use rkube_cri::api::{
    Capability, Image, Int64Value, LinuxContainerSecurityContext, SeLinuxOption, SecurityProfile,
    security_profile::ProfileType,
};

use super::sandbox::{namespace_options, supplemental_groups, supplemental_groups_policy};
use super::{ConfigError, pod_full_name};
use crate::KubeletConfig;

/// Paths masked in every unprivileged container's /proc and /sys (upstream keeps them in step with moby).
const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Paths mounted read-only in every unprivileged container's /proc.
const DEFAULT_READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub(crate) fn int64(value: i64) -> Int64Value {
    Int64Value { value }
}

pub(crate) fn selinux_options(o: &SELinuxOptions) -> SeLinuxOption {
    SeLinuxOption {
        user: o.user.clone().unwrap_or_default(),
        role: o.role.clone().unwrap_or_default(),
        r#type: o.type_.clone().unwrap_or_default(),
        level: o.level.clone().unwrap_or_default(),
    }
}

/// The container's securityContext with the pod's user, group, non-root, SELinux, seccomp and AppArmor
/// settings filled in where the container sets none (upstream's `DetermineEffectiveSecurityContext`).
pub(crate) fn effective_security_context(pod: &Pod, container: &Container) -> SecurityContext {
    let mut sc = container.security_context.clone().unwrap_or_default();
    if let Some(p) = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()) {
        sc.run_as_user = sc.run_as_user.or(p.run_as_user);
        sc.run_as_group = sc.run_as_group.or(p.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(p.run_as_non_root);
        sc.se_linux_options = sc.se_linux_options.or_else(|| p.se_linux_options.clone());
        sc.seccomp_profile = sc.seccomp_profile.or_else(|| p.seccomp_profile.clone());
        sc.app_armor_profile = sc.app_armor_profile.or_else(|| p.app_armor_profile.clone());
    }
    sc
}

/// The image's user as upstream's `getImageUser` reads it: a numeric uid, else a name, else root.
fn image_user(image: &Image) -> (Option<i64>, String) {
    match (&image.uid, image.username.as_str()) {
        (Some(uid), _) => (Some(uid.value), String::new()),
        (None, name) if !name.is_empty() => (None, name.to_owned()),
        _ => (Some(0), String::new()),
    }
}

/// Upstream's `verifyRunAsNonRoot`, with its messages.
fn verify_run_as_non_root(
    pod: &Pod,
    container: &Container,
    sc: &SecurityContext,
    uid: Option<i64>,
    username: &str,
) -> Result<(), ConfigError> {
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let who = format!("(pod: \"{}\", container: {})", pod_full_name(pod), container.name);
    if let Some(user) = sc.run_as_user {
        if user == 0 {
            return Err(ConfigError::Invalid(format!("container's runAsUser breaks non-root policy {who}")));
        }
        return Ok(());
    }
    match uid {
        Some(0) => Err(ConfigError::Invalid(format!("container has runAsNonRoot and image will run as root {who}"))),
        None if !username.is_empty() => Err(ConfigError::Invalid(format!(
            "container has runAsNonRoot and image has non-numeric user ({username}), cannot verify user is non-root \
             {who}"
        ))),
        _ => Ok(()),
    }
}

/// The seccomp profile: the container's, else the pod's, else unconfined (upstream's default without
/// `--seccomp-default`). Localhost profiles live under `<root_dir>/seccomp`.
fn seccomp(sc: &SecurityContext, config: &KubeletConfig) -> SecurityProfile {
    let profile = sc.seccomp_profile.as_ref();
    match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => {
            SecurityProfile { profile_type: ProfileType::RuntimeDefault as i32, ..Default::default() }
        }
        Some("Localhost") => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: config
                .root_dir
                .join("seccomp")
                .join(profile.and_then(|p| p.localhost_profile.as_deref()).unwrap_or_default())
                .to_string_lossy()
                .into_owned(),
        },
        _ => SecurityProfile { profile_type: ProfileType::Unconfined as i32, ..Default::default() },
    }
}

/// The AppArmor profile when one is asked for (none: the runtime's default).
fn apparmor(sc: &SecurityContext) -> Option<SecurityProfile> {
    let p = sc.app_armor_profile.as_ref()?;
    Some(match p.type_.as_str() {
        "Unconfined" => SecurityProfile { profile_type: ProfileType::Unconfined as i32, ..Default::default() },
        "Localhost" => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: p.localhost_profile.clone().unwrap_or_default(),
        },
        _ => SecurityProfile { profile_type: ProfileType::RuntimeDefault as i32, ..Default::default() },
    })
}

/// The container's Linux security context.
pub(crate) fn container_security_context(
    pod: &Pod,
    container: &Container,
    image: Option<&Image>,
    config: &KubeletConfig,
) -> Result<LinuxContainerSecurityContext, ConfigError> {
    let sc = effective_security_context(pod, container);
    let (uid, username) = image.map(image_user).unwrap_or((None, String::new()));
    verify_run_as_non_root(pod, container, &sc, uid, &username)?;
    let privileged = sc.privileged.unwrap_or(false);
    let unmasked = sc.proc_mount.as_deref() == Some("Unmasked");
    let paths = |defaults: &[&str]| {
        if privileged || unmasked { Vec::new() } else { defaults.iter().map(|p| (*p).to_owned()).collect() }
    };
    let (run_as_user, run_as_username) = match sc.run_as_user {
        Some(u) => (Some(int64(u)), String::new()),
        None => (uid.map(int64), username),
    };
    Ok(LinuxContainerSecurityContext {
        capabilities: sc.capabilities.as_ref().map(|c| Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(namespace_options(pod)),
        selinux_options: sc.se_linux_options.as_ref().map(selinux_options),
        run_as_user,
        run_as_group: sc.run_as_group.map(int64),
        run_as_username,
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: supplemental_groups(pod),
        supplemental_groups_policy: supplemental_groups_policy(pod),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: paths(&DEFAULT_MASKED_PATHS),
        readonly_paths: paths(&DEFAULT_READONLY_PATHS),
        seccomp: Some(seccomp(&sc, config)),
        apparmor: apparmor(&sc),
        ..Default::default()
    })
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
