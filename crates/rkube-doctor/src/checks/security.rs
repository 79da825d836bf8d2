//! SELinux enforcing, firewalld or ufw blocking rkube's ports, and swap (the guides turn all three off).

use super::first_line;
use crate::{Finding, Host};

const G: &str = "host";

/// The ports other nodes must reach: API server, kubelet, flannel vxlan, etcd peers and clients.
const NEEDED: [(&str, &str); 4] = [("6443", "tcp"), ("10250", "tcp"), ("8472", "udp"), ("2379-2380", "tcp")];

pub(crate) fn run(host: &dyn Host, out: &mut Vec<Finding>) {
    out.push(selinux(host));
    out.push(firewalld(host));
    out.push(ufw(host));
    out.push(swap(host));
}

fn selinux(host: &dyn Host) -> Finding {
    match host.read("/sys/fs/selinux/enforce").as_deref().map(first_line) {
        Some("1") => Finding::warn(
            G,
            "SELinux",
            "SELinux is enforcing: containers' volume and overlay mounts are denied without container-selinux policy",
            "setenforce 0 && sed -i 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config",
        ),
        Some(_) => Finding::ok(G, "SELinux", "SELinux is permissive"),
        None => Finding::ok(G, "SELinux", "SELinux is not enabled"),
    }
}

fn firewalld(host: &dyn Host) -> Finding {
    let running = host.run("firewall-cmd", &["--state"]).is_some_and(|o| o.stdout.trim() == "running");
    if !running {
        return Finding::ok(G, "firewalld", "firewalld is not running");
    }
    let open = host.run("firewall-cmd", &["--list-ports"]).map(|o| o.stdout).unwrap_or_default();
    let blocked: Vec<String> = NEEDED
        .iter()
        .map(|(p, proto)| format!("{p}/{proto}"))
        .filter(|p| !open.split_whitespace().any(|o| o == p))
        .collect();
    if blocked.is_empty() {
        return Finding::ok(G, "firewalld", "firewalld is running and opens rkube's ports");
    }
    let adds: String = blocked.iter().map(|p| format!(" --add-port={p}")).collect();
    Finding::fail(
        G,
        "firewalld",
        format!("firewalld is running and blocks {}", blocked.join(", ")),
        format!("firewall-cmd --permanent{adds} && firewall-cmd --reload (or: systemctl disable --now firewalld)"),
    )
}

fn ufw(host: &dyn Host) -> Finding {
    let status = host.run("ufw", &["status"]).map(|o| o.stdout).unwrap_or_default();
    if !status.lines().any(|l| l.trim() == "Status: active") {
        return Finding::ok(G, "ufw", "ufw is not active");
    }
    let allowed = |port: &str, proto: &str| {
        let spec = format!("{}/{proto}", port.replace('-', ":"));
        status.lines().any(|l| l.contains("ALLOW") && l.split_whitespace().next() == Some(spec.as_str()))
    };
    let blocked: Vec<(&str, &str)> = NEEDED.iter().copied().filter(|(p, proto)| !allowed(p, proto)).collect();
    if blocked.is_empty() {
        return Finding::ok(G, "ufw", "ufw is active and allows rkube's ports");
    }
    let names: Vec<String> = blocked.iter().map(|(p, proto)| format!("{p}/{proto}")).collect();
    let cmds: Vec<String> =
        blocked.iter().map(|(p, proto)| format!("ufw allow {}/{proto}", p.replace('-', ":"))).collect();
    Finding::fail(G, "ufw", format!("ufw is active and blocks {}", names.join(", ")), cmds.join(" && "))
}

fn swap(host: &dyn Host) -> Finding {
    let swaps = host.read("/proc/swaps").unwrap_or_default();
    let devices: Vec<&str> = swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    if devices.is_empty() {
        return Finding::ok(G, "swap", "swap is off");
    }
    Finding::warn(
        G,
        "swap",
        format!("swap is on ({}): memory limits and eviction are unreliable", devices.join(", ")),
        r"swapoff -a && sed -i '/\sswap\s/s/^/#/' /etc/fstab",
    )
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    fn finding(h: &FakeHost, check: &str) -> crate::Finding {
        check_host(h, &Config::default()).into_iter().find(|x| x.check == check).unwrap()
    }

    #[test]
    fn selinux_enforcing_and_swap_on_warn() {
        let mut h = FakeHost::healthy();
        h.file("/sys/fs/selinux/enforce", "1");
        h.file("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sda3 partition 999 0 -2\n");
        let s = finding(&h, "SELinux");
        assert_eq!(s.status, Status::Warn);
        assert!(s.remedy.unwrap().starts_with("setenforce 0"));
        let w = finding(&h, "swap");
        assert_eq!((w.status, w.seen.contains("/dev/sda3")), (Status::Warn, true));
        assert!(w.remedy.unwrap().starts_with("swapoff -a"));
    }

    #[test]
    fn firewalld_and_ufw_name_the_blocked_ports() {
        let mut h = FakeHost::healthy();
        h.file("/usr/bin/firewall-cmd", "");
        h.cmd("firewall-cmd --state", "running\n");
        h.cmd("firewall-cmd --list-ports", "6443/tcp 10250/tcp\n");
        let f = finding(&h, "firewalld");
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.seen, "firewalld is running and blocks 8472/udp, 2379-2380/tcp");
        assert!(f.remedy.unwrap().starts_with("firewall-cmd --permanent --add-port=8472/udp --add-port=2379-2380/tcp"));
        h.file("/usr/sbin/ufw", "");
        h.cmd(
            "ufw status",
            "Status: active\n\nTo Action From\n6443/tcp ALLOW Anywhere\n2379:2380/tcp ALLOW Anywhere\n",
        );
        let u = finding(&h, "ufw");
        assert_eq!(u.remedy.as_deref(), Some("ufw allow 10250/tcp && ufw allow 8472/udp"));
    }
}
