//! Floors: free space in the data directory, memory, CPUs, and a hostname that can be a node name.

use super::first_line;
use crate::{Config, Finding, Host};

const G: &str = "resources";
const GIB: u64 = 1 << 30;

pub(crate) fn run(host: &dyn Host, config: &Config, out: &mut Vec<Finding>) {
    out.push(disk(host, config));
    out.push(memory(host));
    out.push(cpus(host));
    out.push(hostname(host));
}

fn disk(host: &dyn Host, config: &Config) -> Finding {
    let dir =
        if config.data_dir.as_os_str().is_empty() { "/var/lib/rkube".as_ref() } else { config.data_dir.as_path() };
    let shown = dir.display();
    let Some(free) = host.free_bytes(dir) else {
        return Finding::warn(G, "disk", format!("cannot read free space of {shown}"), format!("df -h {shown}"));
    };
    let seen = format!("{:.1} GiB free under {shown}", free as f64 / GIB as f64);
    let remedy = format!("free space under {shown} (du -xsh {shown}/* | sort -h), or pass --data-dir on a larger disk");
    // kubelet evicts pods below 10% free by default; images alone need a few GiB.
    if free < 2 * GIB {
        Finding::fail(G, "disk", format!("{seen}: at least 2 GiB needed"), remedy)
    } else if free < 10 * GIB {
        Finding::warn(G, "disk", format!("{seen}: 10 GiB recommended"), remedy)
    } else {
        Finding::ok(G, "disk", seen)
    }
}

fn memory(host: &dyn Host) -> Finding {
    let meminfo = host.read("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let Some(total) = kib("MemTotal:") else {
        return Finding::warn(G, "memory", "cannot read /proc/meminfo", "cat /proc/meminfo");
    };
    let mib = total / 1024;
    let seen = format!("{mib} MiB of memory");
    let remedy = "give the machine more memory (a server with its agent wants 2 GiB)";
    if mib < 512 {
        Finding::fail(G, "memory", format!("{seen}: at least 512 MiB needed"), remedy)
    } else if mib < 1700 {
        Finding::warn(G, "memory", format!("{seen}: 1700 MiB recommended (kubeadm's floor)"), remedy)
    } else {
        Finding::ok(G, "memory", seen)
    }
}

fn cpus(host: &dyn Host) -> Finding {
    let n = host.read("/proc/cpuinfo").unwrap_or_default().lines().filter(|l| l.starts_with("processor")).count();
    if n >= 2 || n == 0 {
        Finding::ok(G, "cpus", format!("{n} CPUs"))
    } else {
        Finding::warn(G, "cpus", "1 CPU: 2 recommended (kubeadm's floor)", "give the machine a second CPU")
    }
}

fn hostname(host: &dyn Host) -> Finding {
    let name = host.read("/proc/sys/kernel/hostname").map(|h| first_line(&h).to_string()).unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if valid {
        Finding::ok(G, "hostname", format!("node name {name}"))
    } else {
        Finding::fail(
            G,
            "hostname",
            format!("hostname {name:?} is not a valid node name (lowercase RFC 1123)"),
            format!("hostnamectl set-hostname {} (or pass --node-name)", name.to_lowercase().replace('_', "-")),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    #[test]
    fn floors() {
        let mut h = FakeHost::healthy();
        h.free = 1 << 30;
        h.file("/proc/meminfo", "MemTotal: 1000000 kB\n");
        h.file("/proc/sys/kernel/hostname", "Node_1\n");
        let f = check_host(&h, &Config::default());
        let get = |c: &str| f.iter().find(|x| x.check == c).unwrap().clone();
        assert_eq!(get("disk").status, Status::Fail);
        assert_eq!(get("memory").status, Status::Warn);
        assert_eq!(get("hostname").remedy.as_deref(), Some("hostnamectl set-hostname node-1 (or pass --node-name)"));
    }

    #[test]
    fn healthy_host_has_no_problem() {
        let f = check_host(&FakeHost::healthy(), &Config::default());
        let bad: Vec<_> = f.iter().filter(|x| x.status != Status::Ok).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(crate::exit_code(&f), 0);
    }
}
