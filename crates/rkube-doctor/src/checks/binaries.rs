//! The programs the agent runs, each with the Debian package that provides it.

use crate::{Config, Finding, Host, ProxyMode};

const G: &str = "binaries";

/// Where CNI plugins are looked for (Debian's package, then the upstream tarball's place).
const CNI_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

pub(crate) fn run(host: &dyn Host, config: &Config, out: &mut Vec<Finding>) {
    // (binary, package, required)
    let mut wanted = vec![
        ("iptables", "iptables", true),
        ("iptables-restore", "iptables", true),
        ("ip", "iproute2", true),
        ("mount", "mount", true),
        ("nsenter", "util-linux", true),
        ("conntrack", "conntrack", false),
    ];
    // A runtime given by socket is the user's; otherwise rkube starts containerd and runc itself.
    if config.container_runtime_endpoint.is_none() {
        wanted.extend([("containerd", "containerd", true), ("runc", "runc", true)]);
    }
    match config.proxy_mode {
        // rkube's ipvs mode writes plain iptables rules where upstream matches ipsets (the ipset tool is not
        // needed) and programs IPVS over netlink; ipvsadm is only for looking at the table.
        ProxyMode::Ipvs => wanted.push(("ipvsadm", "ipvsadm", false)),
        ProxyMode::Nftables | ProxyMode::Iptables => {}
    }
    for (bin, package, required) in wanted {
        let f = match host.which(bin) {
            Some(path) => Finding::ok(G, bin, format!("{bin}: {path}")),
            None => {
                let note = match bin {
                    _ if required => "",
                    "ipvsadm" => " (only needed to inspect the IPVS table by hand)",
                    _ => " (conntrack entries of removed services linger)",
                };
                let seen = format!("{bin} not found{note}");
                let remedy = format!("apt-get install -y {package}");
                if required { Finding::fail(G, bin, seen, remedy) } else { Finding::warn(G, bin, seen, remedy) }
            }
        };
        out.push(f);
    }
    out.push(cni(host));
}

fn cni(host: &dyn Host) -> Finding {
    let plugins = ["bridge", "host-local", "loopback", "portmap"];
    for dir in CNI_DIRS {
        let missing: Vec<&str> = plugins.iter().copied().filter(|p| !host.exists(&format!("{dir}/{p}"))).collect();
        if missing.is_empty() {
            return Finding::ok(G, "CNI plugins", format!("{} in {dir}", plugins.join(", ")));
        }
    }
    Finding::fail(
        G,
        "CNI plugins",
        format!("CNI plugins {} not found in {}", plugins.join(", "), CNI_DIRS.join(" or ")),
        "apt-get install -y containernetworking-plugins",
    )
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    #[test]
    fn missing_binaries_name_their_package() {
        let mut h = FakeHost::healthy();
        h.files.remove("/usr/sbin/nsenter");
        h.files.remove("/usr/sbin/conntrack");
        h.files.remove("/usr/lib/cni/portmap");
        let f = check_host(&h, &Config::default());
        let get = |c: &str| f.iter().find(|x| x.check == c).unwrap().clone();
        assert_eq!(get("nsenter").status, Status::Fail);
        assert_eq!(get("nsenter").remedy.as_deref(), Some("apt-get install -y util-linux"));
        assert_eq!(get("conntrack").status, Status::Warn);
        assert_eq!(get("CNI plugins").remedy.as_deref(), Some("apt-get install -y containernetworking-plugins"));
    }
}
