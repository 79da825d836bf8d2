//! cgroup v1 or v2, and the controllers the agent needs enabled.

use crate::{Finding, Host};

const G: &str = "cgroups";
const REBOOT_V2: &str = "add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, then \
update-grub && reboot";

pub(crate) fn run(host: &dyn Host, out: &mut Vec<Finding>) {
    if let Some(controllers) = host.read("/sys/fs/cgroup/cgroup.controllers") {
        out.push(Finding::ok(G, "cgroup version", "cgroup v2 (unified)"));
        let have: Vec<&str> = controllers.split_whitespace().collect();
        // devices and freezer are built into v2 (eBPF and cgroup.freeze), cpuacct is part of cpu.
        out.push(controllers_finding(&["cpu", "memory", "pids", "cpuset"], |c| have.contains(&c), "v2"));
        return;
    }
    // (name, hierarchy id, enabled) from /proc/cgroups: what the kernel has, mounted or not.
    let kernel: Vec<(String, String, bool)> = host
        .read("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(1)?.to_string(), f.get(3) == Some(&"1")))
        })
        .collect();
    let hybrid = host.exists("/sys/fs/cgroup/unified");
    let wanted = ["cpu", "cpuacct", "memory", "pids", "cpuset", "devices", "freezer"];
    let disabled: Vec<&str> = wanted.iter().copied().filter(|c| !kernel.iter().any(|(n, _, e)| n == c && *e)).collect();
    if !disabled.is_empty() {
        out.push(Finding::warn(G, "cgroup version", "cgroup v1", REBOOT_V2));
        out.push(disabled_finding(&disabled, "v1"));
        return;
    }
    let unmounted: Vec<&str> =
        wanted.iter().copied().filter(|c| !host.exists(&format!("/sys/fs/cgroup/{c}"))).collect();
    // Every controller in hierarchy 0: the kernel runs them on cgroup v2, which is just not mounted here.
    let v2_only = kernel.iter().filter(|(_, _, e)| *e).all(|(_, h, _)| h == "0");
    if !unmounted.is_empty() && v2_only {
        out.push(Finding::fail(
            G,
            "cgroup version",
            "cgroup v2 is not mounted at /sys/fs/cgroup",
            "mount -t cgroup2 none /sys/fs/cgroup",
        ));
        return;
    }
    out.push(Finding::warn(
        G,
        "cgroup version",
        format!("cgroup v1{}: in maintenance since Kubernetes 1.31", if hybrid { " (hybrid)" } else { "" }),
        REBOOT_V2,
    ));
    out.push(if unmounted.is_empty() {
        Finding::ok(G, "cgroup controllers", format!("v1: {} enabled", wanted.join(", ")))
    } else {
        // Seen under `ip netns exec`, which mounts a fresh /sys, and on hosts without an init that mounts them.
        // When init's mount namespace has them, it is the former: containerd and runc would fail the same way.
        // (/proc/1/root is refused to us there; init's mountinfo is readable.)
        let in_init = host.read("/proc/1/mountinfo").is_some_and(|m| {
            m.lines().any(|l| l.split_whitespace().nth(4).is_some_and(|p| p.starts_with("/sys/fs/cgroup/")))
        });
        let (seen, remedy) = if in_init {
            (
                format!(
                    "v1: mounted on the host but hidden in this mount namespace (`ip netns exec` mounts a fresh \
                     /sys): {}",
                    unmounted.join(", ")
                ),
                "enter only the network namespace: nsenter --net=/run/netns/<name> rkube ...",
            )
        } else {
            (
                format!("v1: enabled but not mounted under /sys/fs/cgroup: {}", unmounted.join(", ")),
                "apt-get install -y cgroupfs-mount && cgroupfs-mount",
            )
        };
        Finding::fail(G, "cgroup controllers", seen, remedy)
    });
}

fn controllers_finding(wanted: &[&str], on: impl Fn(&str) -> bool, version: &str) -> Finding {
    let missing: Vec<&str> = wanted.iter().copied().filter(|c| !on(c)).collect();
    if missing.is_empty() {
        return Finding::ok(G, "cgroup controllers", format!("{version}: {} enabled", wanted.join(", ")));
    }
    disabled_finding(&missing, version)
}

/// Controllers the kernel has switched off: the kernel command line turns them on (Raspberry Pi and some ARM
/// boards boot with memory disabled).
fn disabled_finding(missing: &[&str], version: &str) -> Finding {
    let args: Vec<String> = missing.iter().map(|c| format!("cgroup_enable={c}")).collect();
    let extra = if missing.contains(&"memory") { " cgroup_memory=1" } else { "" };
    Finding::fail(
        G,
        "cgroup controllers",
        format!("{version}: not enabled: {}", missing.join(", ")),
        format!(
            "add `{}{extra}` to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, or \
            /boot/cmdline.txt), then update-grub && reboot",
            args.join(" ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    #[test]
    fn v1_without_memory_fails_with_cmdline_remedy() {
        let mut h = FakeHost::healthy();
        h.files.remove("/sys/fs/cgroup/cgroup.controllers");
        let mut cgroups = String::from("#subsys_name\thierarchy\tnum_cgroups\tenabled\n");
        for c in ["cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "pids"] {
            cgroups += &format!("{c}\t1\t1\t{}\n", u8::from(c != "memory"));
            h.file(&format!("/sys/fs/cgroup/{c}/tasks"), "");
        }
        h.file("/proc/cgroups", &cgroups);
        let f = check_host(&h, &Config::default());
        let v = f.iter().find(|x| x.check == "cgroup version").unwrap();
        assert_eq!(v.status, Status::Warn);
        let c = f.iter().find(|x| x.check == "cgroup controllers").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.seen, "v1: not enabled: memory");
        assert!(c.remedy.as_deref().unwrap().contains("cgroup_enable=memory cgroup_memory=1"));
    }

    #[test]
    fn v1_enabled_but_unmounted_names_cgroupfs_mount() {
        let mut h = FakeHost::healthy();
        h.files.remove("/sys/fs/cgroup/cgroup.controllers");
        let mut cgroups = String::from("#subsys_name\thierarchy\tnum_cgroups\tenabled\n");
        for c in ["cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "pids"] {
            cgroups += &format!("{c}\t3\t1\t1\n");
        }
        h.file("/proc/cgroups", &cgroups);
        let f = check_host(&h, &Config::default());
        let c = f.iter().find(|x| x.check == "cgroup controllers").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.remedy.as_deref(), Some("apt-get install -y cgroupfs-mount && cgroupfs-mount"));
        // The same kernel on cgroup v2 (every hierarchy 0) needs cgroup2 mounted instead.
        h.file("/proc/cgroups", &cgroups.replace("\t3\t", "\t0\t"));
        let f = check_host(&h, &Config::default());
        let v = f.iter().find(|x| x.check == "cgroup version").unwrap();
        assert_eq!(v.remedy.as_deref(), Some("mount -t cgroup2 none /sys/fs/cgroup"));
    }

    #[test]
    fn v2_with_all_controllers_is_ok() {
        let f = check_host(&FakeHost::healthy(), &Config::default());
        assert!(f.iter().filter(|x| x.group == "cgroups").all(|x| x.status == Status::Ok), "{f:#?}");
    }
}
