//! ipvs mode: the start-up module check (this kernel has no `ip_vs`, so the mode fails at start, naming the
//! missing modules and the remedy as the guides describe) and the programming itself: the model reduced to
//! virtual and real servers (`desired`), the changes against what was applied (`diff`), and those changes
//! encoded as the kernel's IPVS generic-netlink messages (`genl`). No netlink socket is opened yet: that
//! needs a kernel with ip_vs, which this machine lacks (`transcript_tests` stands in for it).

use std::path::Path;

pub mod desired;
pub mod diff;
pub mod genl;

#[cfg(test)]
mod transcript_tests;

pub use desired::{Desired, IpvsTable, RealServer, ServiceAttrs, VirtualServer};
pub use diff::{Op, Plan, Programmer};

/// The kernel modules ipvs mode needs.
pub const REQUIRED_MODULES: &[&str] = &["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"];

/// Modules from `REQUIRED_MODULES` that are neither loaded (`/proc/modules`, `/sys/module/NAME`) nor built in
/// (`/lib/modules/$(uname -r)/modules.builtin`), looked up under `root` (`/` normally).
pub fn missing_modules(root: &Path) -> Vec<&'static str> {
    let loaded = std::fs::read_to_string(root.join("proc/modules")).unwrap_or_default();
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease")).unwrap_or_default();
    let builtin = std::fs::read_to_string(root.join("lib/modules").join(release.trim()).join("modules.builtin"))
        .unwrap_or_default();
    REQUIRED_MODULES
        .iter()
        .copied()
        .filter(|m| {
            let in_proc = loaded.lines().any(|l| l.split_whitespace().next() == Some(m));
            let in_sys = root.join("sys/module").join(m).exists();
            let built_in = builtin.lines().any(|l| l.rsplit('/').next().map(|f| f.trim_end_matches(".ko")) == Some(m));
            !(in_proc || in_sys || built_in)
        })
        .collect()
}

/// The error text when modules are missing (the guides' wording: what is missing, and how to fix it).
pub fn missing_message(missing: &[&str]) -> String {
    format!(
        "can't use the IPVS proxier: the kernel modules {} are not loaded (checked /proc/modules, /sys/module and \
         modules.builtin); load them with `modprobe -- {}` (and list them in /etc/modules-load.d/ipvs.conf), or run \
         with --proxy-mode=iptables or --proxy-mode=nftables",
        missing.join(" "),
        missing.join(" && modprobe -- ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_lacks_ip_vs_and_the_message_names_it() {
        let missing = missing_modules(Path::new("/"));
        assert!(missing.contains(&"ip_vs"), "{missing:?}");
        assert!(!missing.contains(&"nf_conntrack"), "nf_conntrack is in /sys/module here: {missing:?}");
        let msg = missing_message(&missing);
        assert!(msg.contains("ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh"), "{msg}");
        assert!(msg.contains("modprobe -- ip_vs"), "{msg}");
    }

    #[test]
    fn modules_found_in_a_fake_root() {
        let dir = std::env::temp_dir().join(format!("rkp-ipvs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        std::fs::create_dir_all(dir.join("sys/module/ip_vs_sh")).unwrap();
        std::fs::write(dir.join("proc/modules"), "ip_vs 1 0 - Live 0x0\nip_vs_rr 1 0 - Live 0x0\n").unwrap();
        let missing = missing_modules(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(missing, vec!["ip_vs_wrr", "nf_conntrack"]);
    }
}
