//! ipvs mode: the start-up module check (this kernel has no `ip_vs` and no `dummy`, so the mode fails at
//! start, naming the missing modules and the remedy as the guides describe) and the programming: the model
//! reduced to virtual and real servers (`desired`), the changes against what the kernel has (`diff`), those
//! changes as IPVS generic-netlink messages (`genl`, replies read by `wire`) sent through a netlink socket
//! (`socket`, `kernel`), the service addresses on `kube-ipvs0` (`device`), upstream's companion iptables
//! rules (`rules`), and one sync tying them together (`backend`). This machine's kernel has no ip_vs:
//! `transcript_tests` and `sync_tests` put a recording fake kernel behind the socket.

use std::path::Path;

pub mod backend;
pub mod desired;
pub mod device;
pub mod diff;
pub mod genl;
pub mod kernel;
pub mod rules;
pub mod socket;
pub mod wire;

#[cfg(test)]
mod fake_kernel;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod transcript_tests;

pub use backend::{IpvsBackend, IpvsReport};
pub use desired::{Desired, IpvsTable, RealServer, ServiceAttrs, VirtualServer};
pub use device::{DummyDevice, ServiceDevice};
pub use diff::{Op, Plan, Programmer};
pub use kernel::Kernel;
pub use socket::{GenlSocket, NetlinkSocket};

/// The kernel modules ipvs mode needs.
pub const REQUIRED_MODULES: &[&str] = &["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"];
/// The module of the `kube-ipvs0` device (a loadable one counts: the kernel loads it when the link is made).
pub const DEVICE_MODULE: &str = "dummy";

/// The schedulers `--ipvs-scheduler` accepts (upstream's list; each is the kernel module `ip_vs_NAME`).
pub const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"];

/// Checks `--ipvs-scheduler` (empty means rr).
pub fn check_scheduler(s: &str) -> Result<(), String> {
    if s.is_empty() || SCHEDULERS.contains(&s) {
        Ok(())
    } else {
        Err(format!("--ipvs-scheduler {s:?} is not an IPVS scheduler: use one of {}", SCHEDULERS.join(", ")))
    }
}

/// The sysctls upstream's ipvs mode sets: conntrack entries for IPVS connections (the masquerade rules need
/// them), and connections to removed real servers or expired persistence templates dropped at once.
const SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/vs/conntrack", "1"),
    ("net/ipv4/vs/expire_nodest_conn", "1"),
    ("net/ipv4/vs/expire_quiescent_template", "1"),
];

/// Sets `SYSCTLS` (in the calling process's network namespace).
pub fn set_sysctls() -> crate::Result<()> {
    for (key, value) in SYSCTLS {
        let path = Path::new("/proc/sys").join(key);
        std::fs::write(&path, value)
            .map_err(|source| crate::Error::Netlink { what: format!("setting {}", path.display()), source })?;
    }
    Ok(())
}

/// The production backend: the IPVS family resolved on a real netlink socket (a kernel without ip_vs fails
/// here, naming it), `kube-ipvs0` found or created (a kernel without dummy fails here, naming it), the
/// sysctls set, and the iptables rules run through `exec`.
pub async fn open(
    scheduler: &str,
    opts: crate::RuleOptions,
    exec: crate::Exec,
) -> crate::Result<IpvsBackend<NetlinkSocket, DummyDevice>> {
    check_scheduler(scheduler).map_err(crate::Error::Ipvs)?;
    let sock = NetlinkSocket::open().map_err(|source| crate::Error::Netlink { what: "opening".into(), source })?;
    let kernel = Kernel::open(sock).await?;
    let device = DummyDevice::ensure().await?;
    set_sysctls()?;
    Ok(IpvsBackend::new(kernel, device, Some(exec), scheduler, opts))
}

/// Whether the dummy driver is loaded, built in, or loadable (listed in `modules.dep`).
fn dummy_available(root: &Path, loaded: &str, builtin: &str, release: &str) -> bool {
    let m = DEVICE_MODULE;
    let deps = std::fs::read_to_string(root.join("lib/modules").join(release).join("modules.dep")).unwrap_or_default();
    let named = |path: &str| path.rsplit('/').next().and_then(|f| f.split('.').next()) == Some(m);
    loaded.lines().any(|l| l.split_whitespace().next() == Some(m))
        || root.join("sys/module").join(m).exists()
        || builtin.lines().any(named)
        || deps.lines().any(|l| l.split(':').next().is_some_and(named))
}

/// Modules from `REQUIRED_MODULES` that are neither loaded (`/proc/modules`, `/sys/module/NAME`) nor built in
/// (`/lib/modules/$(uname -r)/modules.builtin`), then `dummy` when it cannot be had at all, looked up under
/// `root` (`/` normally).
pub fn missing_modules(root: &Path) -> Vec<&'static str> {
    let loaded = std::fs::read_to_string(root.join("proc/modules")).unwrap_or_default();
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease")).unwrap_or_default();
    let builtin = std::fs::read_to_string(root.join("lib/modules").join(release.trim()).join("modules.builtin"))
        .unwrap_or_default();
    let mut missing: Vec<&'static str> = REQUIRED_MODULES
        .iter()
        .copied()
        .filter(|m| {
            let in_proc = loaded.lines().any(|l| l.split_whitespace().next() == Some(m));
            let in_sys = root.join("sys/module").join(m).exists();
            let built_in = builtin.lines().any(|l| l.rsplit('/').next().map(|f| f.trim_end_matches(".ko")) == Some(m));
            !(in_proc || in_sys || built_in)
        })
        .collect();
    if !dummy_available(root, &loaded, &builtin, release.trim()) {
        missing.push(DEVICE_MODULE);
    }
    missing
}

/// The error text when modules are missing (the guides' wording: what is missing, and how to fix it).
pub fn missing_message(missing: &[&str]) -> String {
    format!(
        "can't use the IPVS proxier: the kernel modules {} are not loaded (checked /proc/modules, /sys/module, \
         modules.builtin and, for dummy, modules.dep); load them with `modprobe -- {}` (and list them in \
         /etc/modules-load.d/ipvs.conf), or run with --proxy-mode=iptables or --proxy-mode=nftables",
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
        // Nor can this kernel make a dummy link (no module, not built in).
        assert_eq!(missing.last(), Some(&"dummy"), "{missing:?}");
        assert!(msg.contains("modprobe -- dummy"), "{msg}");
    }

    #[test]
    fn schedulers_are_upstreams_and_bad_ones_are_refused() {
        for s in ["", "rr", "lc", "dh", "sh", "sed", "nq", "wrr", "wlc", "lblc", "lblcr", "mh"] {
            assert!(check_scheduler(s).is_ok(), "{s}");
        }
        let e = check_scheduler("fastest").unwrap_err();
        assert!(e.contains("--ipvs-scheduler \"fastest\" is not an IPVS scheduler: use one of rr, wrr"), "{e}");
    }

    #[test]
    fn modules_found_in_a_fake_root() {
        let dir = std::env::temp_dir().join(format!("rkp-ipvs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        std::fs::create_dir_all(dir.join("sys/module/ip_vs_sh")).unwrap();
        std::fs::write(dir.join("proc/modules"), "ip_vs 1 0 - Live 0x0\nip_vs_rr 1 0 - Live 0x0\n").unwrap();
        let missing = missing_modules(&dir);
        assert_eq!(missing, vec!["ip_vs_wrr", "nf_conntrack", "dummy"]);
        // A loadable dummy (listed in modules.dep for the running release) is enough.
        std::fs::create_dir_all(dir.join("proc/sys/kernel")).unwrap();
        std::fs::write(dir.join("proc/sys/kernel/osrelease"), "6.1.0-test\n").unwrap();
        std::fs::create_dir_all(dir.join("lib/modules/6.1.0-test")).unwrap();
        std::fs::write(dir.join("lib/modules/6.1.0-test/modules.dep"), "kernel/drivers/net/dummy.ko.xz:\n").unwrap();
        let missing = missing_modules(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(missing, vec!["ip_vs_wrr", "nf_conntrack"]);
    }
}
