//! Facts about the host for `status.nodeInfo`, read where upstream's kubelet (through cAdvisor) reads them.

use k8s_openapi::api::core::v1::NodeSystemInfo;

/// The kubelet version the agent reports: the Kubernetes release rkube serves, marked as rkube's (the API
/// server's `/version` says `v1.33.0+rkube-<version>` too).
pub const KUBELET_VERSION: &str = concat!("v1.33.0+rkube-", env!("CARGO_PKG_VERSION"));

/// `status.nodeInfo` without the runtime's version (added by the caller from CRI `Version`).
pub fn system_info() -> NodeSystemInfo {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
    NodeSystemInfo {
        machine_id: read("/etc/machine-id"),
        system_uuid: read("/sys/class/dmi/id/product_uuid").to_lowercase(),
        boot_id: read("/proc/sys/kernel/random/boot_id"),
        kernel_version: read("/proc/sys/kernel/osrelease"),
        os_image: pretty_name(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()),
        container_runtime_version: String::new(),
        kubelet_version: KUBELET_VERSION.to_owned(),
        kube_proxy_version: String::new(),
        operating_system: std::env::consts::OS.to_owned(),
        architecture: go_arch().to_owned(),
        ..NodeSystemInfo::default()
    }
}

/// `PRETTY_NAME` of os-release (upstream's osImage), else `Linux`.
fn pretty_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".to_owned())
}

/// The architecture as Go names it (`kubernetes.io/arch`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_image() {
        assert_eq!(
            pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(pretty_name("NAME=x\n"), "Linux");
    }

    #[test]
    fn reads_this_host() {
        let info = system_info();
        assert_eq!(info.operating_system, "linux");
        assert!(!info.kernel_version.is_empty() && !info.boot_id.is_empty(), "{info:?}");
        assert!(info.kubelet_version.starts_with("v1.33.0+rkube-"));
    }
}
