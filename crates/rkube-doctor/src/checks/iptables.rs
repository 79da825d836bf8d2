//! iptables: the FORWARD policy (the guides' pit: docker 1.13+ sets it to DROP and cross-node pod traffic dies)
//! and the iptables release and backend (1.8.0–1.8.3 and 1.8.8 nft have known bugs; rules in both backends).

use crate::{Config, Finding, Host, ProxyMode};

const G: &str = "iptables";

pub(crate) fn run(host: &dyn Host, config: &Config, out: &mut Vec<Finding>) {
    out.push(version(host));
    if let Some(f) = forward_policy(host) {
        out.push(f);
    }
    if config.proxy_mode == ProxyMode::Nftables && host.which("nft").is_none() {
        out.push(Finding::fail(G, "nft", "--proxy-mode nftables needs nft, not found", "apt-get install -y nftables"));
    }
}

fn version(host: &dyn Host) -> Finding {
    let Some(out) = host.run("iptables", &["--version"]) else {
        return Finding::fail(G, "iptables version", "iptables not found", "apt-get install -y iptables");
    };
    let text = out.stdout.trim().to_string();
    let nft = text.contains("nf_tables");
    let release = text.split_whitespace().find_map(|w| w.strip_prefix('v')).unwrap_or("");
    let nums: Vec<u32> = release.split('.').filter_map(|p| p.parse().ok()).collect();
    let v = (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0), nums.get(2).copied().unwrap_or(0));
    let bad = if nft && ((1, 8, 0)..=(1, 8, 3)).contains(&v) {
        Some("its nf_tables backend duplicates and leaves rules behind (1.8.0–1.8.3)")
    } else if nft && v == (1, 8, 8) {
        Some("its nf_tables backend mis-handles rule deletion and listing (1.8.8)")
    } else {
        None
    };
    if let Some(why) = bad {
        return Finding::warn(
            G,
            "iptables version",
            format!("{text}: {why}"),
            "apt-get install -y iptables/bookworm-backports (1.8.9 or later), or \
            update-alternatives --set iptables /usr/sbin/iptables-legacy",
        );
    }
    if nft && legacy_rules(host) {
        return Finding::warn(
            G,
            "iptables version",
            format!("{text}, but the legacy backend also holds rules: the two tables fight"),
            "iptables-legacy-save > /root/legacy.rules && iptables-legacy -F && iptables-legacy -t nat -F",
        );
    }
    Finding::ok(G, "iptables version", text)
}

/// Whether iptables-legacy holds rules of its own (more than the built-in policies).
fn legacy_rules(host: &dyn Host) -> bool {
    host.run("iptables-legacy", &["-S"])
        .filter(|o| o.success)
        .is_some_and(|o| o.stdout.lines().any(|l| l.starts_with("-A ") || l.starts_with("-N ")))
}

fn forward_policy(host: &dyn Host) -> Option<Finding> {
    let out = host.run("iptables", &["-S", "FORWARD"])?;
    if !out.success {
        return Some(Finding::warn(
            G,
            "FORWARD policy",
            format!("iptables -S FORWARD failed: {}", out.stderr.trim()),
            "modprobe iptable_filter",
        ));
    }
    let policy = out.stdout.lines().find_map(|l| l.strip_prefix("-P FORWARD ")).unwrap_or("ACCEPT").trim().to_string();
    if policy == "ACCEPT" {
        return Some(Finding::ok(G, "FORWARD policy", "FORWARD policy ACCEPT"));
    }
    // rkube's flannel rules accept the cluster network in FLANNEL-FWD, which closes the pit by itself.
    if out.stdout.contains("-j FLANNEL-FWD") {
        return Some(Finding::ok(
            G,
            "FORWARD policy",
            format!("FORWARD policy {policy}, rkube's FLANNEL-FWD accepts pods"),
        ));
    }
    Some(Finding::warn(
        G,
        "FORWARD policy",
        format!("FORWARD policy {policy}: pod traffic between nodes is dropped until rkube's FLANNEL-FWD rules are in"),
        "iptables -P FORWARD ACCEPT",
    ))
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, Status, check_host};

    fn finding(h: &FakeHost, check: &str) -> crate::Finding {
        check_host(h, &Config::default()).into_iter().find(|x| x.check == check).unwrap()
    }

    #[test]
    fn forward_drop_warns_with_the_guides_remedy() {
        let mut h = FakeHost::healthy();
        h.cmd("iptables -S FORWARD", "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n");
        let f = finding(&h, "FORWARD policy");
        assert_eq!(f.status, Status::Warn);
        assert_eq!(f.remedy.as_deref(), Some("iptables -P FORWARD ACCEPT"));
        h.cmd(
            "iptables -S FORWARD",
            "-P FORWARD DROP\n-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD\n",
        );
        assert_eq!(finding(&h, "FORWARD policy").status, Status::Ok);
    }

    #[test]
    fn buggy_iptables_releases_warn() {
        for (v, bad) in [("1.8.8", true), ("1.8.2", true), ("1.8.9", false), ("1.8.4", false)] {
            let mut h = FakeHost::healthy();
            h.cmd("iptables --version", &format!("iptables v{v} (nf_tables)\n"));
            let f = finding(&h, "iptables version");
            assert_eq!(f.status == Status::Warn, bad, "{v}: {f:?}");
        }
        let mut h = FakeHost::healthy();
        h.cmd("iptables --version", "iptables v1.8.8 (legacy)\n");
        assert_eq!(finding(&h, "iptables version").status, Status::Ok);
    }
}
