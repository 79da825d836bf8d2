//! Root, the kernel version and the kernel's configuration (k3s's check-config list): read from
//! `/proc/config.gz` or `/boot/config-<release>`, else inferred from loaded and installed modules.

use super::first_line;
use crate::{Config, Finding, Host, ProxyMode};

const G: &str = "kernel";

/// One kernel option: the feature group it belongs to, and the module providing it when built as one.
struct Opt {
    group: &'static str,
    name: &'static str,
    module: Option<&'static str>,
}

const fn o(group: &'static str, name: &'static str, module: Option<&'static str>) -> Opt {
    Opt { group, name, module }
}

/// What every node needs.
const REQUIRED: &[Opt] = &[
    o("namespaces", "NAMESPACES", None),
    o("namespaces", "NET_NS", None),
    o("namespaces", "PID_NS", None),
    o("namespaces", "IPC_NS", None),
    o("namespaces", "UTS_NS", None),
    o("cgroups", "CGROUPS", None),
    o("cgroups", "CGROUP_CPUACCT", None),
    o("cgroups", "CGROUP_DEVICE", None),
    o("cgroups", "CGROUP_FREEZER", None),
    o("cgroups", "CGROUP_SCHED", None),
    o("cgroups", "CPUSETS", None),
    o("cgroups", "MEMCG", None),
    o("cgroups", "CGROUP_PIDS", None),
    o("networking", "VETH", Some("veth")),
    o("networking", "BRIDGE", Some("bridge")),
    o("networking", "BRIDGE_NETFILTER", Some("br_netfilter")),
    o("networking", "VXLAN", Some("vxlan")),
    o("storage", "OVERLAY_FS", Some("overlay")),
    o("netfilter", "NETFILTER_XT_MATCH_STATISTIC", Some("xt_statistic")),
    o("netfilter", "NETFILTER_XT_MATCH_COMMENT", Some("xt_comment")),
    o("netfilter", "NETFILTER_XT_MATCH_MARK", Some("xt_mark")),
    o("netfilter", "NETFILTER_XT_MATCH_CONNTRACK", Some("xt_conntrack")),
    o("netfilter", "NETFILTER_XT_MATCH_RECENT", Some("xt_recent")),
    o("netfilter", "NETFILTER_XT_MATCH_MULTIPORT", Some("xt_multiport")),
    o("netfilter", "NETFILTER_XT_MATCH_ADDRTYPE", Some("xt_addrtype")),
    o("netfilter", "NF_CONNTRACK", Some("nf_conntrack")),
    o("netfilter", "IP_NF_FILTER", Some("iptable_filter")),
    o("nat", "NF_NAT", Some("nf_nat")),
    o("nat", "IP_NF_NAT", Some("iptable_nat")),
    o("nat", "IP_NF_TARGET_MASQUERADE", Some("ipt_MASQUERADE")),
];

/// What `--proxy-mode ipvs` adds: ip_vs, the schedulers the guides load, and the dummy link driver of the
/// `kube-ipvs0` device that holds the service addresses.
const IPVS: &[Opt] = &[
    o("ipvs", "IP_VS", Some("ip_vs")),
    o("ipvs", "IP_VS_RR", Some("ip_vs_rr")),
    o("ipvs", "IP_VS_WRR", Some("ip_vs_wrr")),
    o("ipvs", "IP_VS_SH", Some("ip_vs_sh")),
    o("ipvs", "IP_VS_LC", Some("ip_vs_lc")),
    o("ipvs", "IP_VS_WLC", Some("ip_vs_wlc")),
    o("ipvs", "NETFILTER_XT_MATCH_IPVS", Some("xt_ipvs")),
    o("ipvs", "DUMMY", Some("dummy")),
];

/// What `--proxy-mode nftables` adds.
const NFT: &[Opt] = &[o("nftables", "NF_TABLES", Some("nf_tables"))];

/// Every option name (the fake healthy host enables them all).
#[cfg(test)]
pub(crate) fn all_options() -> Vec<&'static str> {
    REQUIRED.iter().chain(IPVS).chain(NFT).map(|o| o.name).collect()
}

pub(crate) fn run(host: &dyn Host, config: &Config, out: &mut Vec<Finding>) {
    out.push(root(host));
    let release = host.read("/proc/sys/kernel/osrelease").map(|r| first_line(&r).to_string()).unwrap_or_default();
    out.push(version(&release));
    let mut opts: Vec<&Opt> = REQUIRED.iter().collect();
    match config.proxy_mode {
        ProxyMode::Ipvs => opts.extend(IPVS),
        ProxyMode::Nftables => opts.extend(NFT),
        ProxyMode::Iptables => {}
    }
    out.extend(options(host, &release, &opts));
}

fn root(host: &dyn Host) -> Finding {
    match host.euid() {
        0 => Finding::ok(G, "root", "running as root"),
        uid => Finding::fail(G, "root", format!("running as uid {uid}; rkube needs root"), "sudo rkube ..."),
    }
}

fn version(release: &str) -> Finding {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let seen = format!("kernel {release}");
    let upgrade = "apt-get install -y linux-image-amd64 && reboot";
    if (major, minor) < (3, 10) {
        Finding::fail(G, "kernel version", format!("{seen}: containers need 3.10 or later"), upgrade)
    } else if (major, minor) < (4, 19) {
        Finding::warn(G, "kernel version", format!("{seen}: Kubernetes supports 4.19 or later"), upgrade)
    } else {
        Finding::ok(G, "kernel version", seen)
    }
}

/// `y`/`m`/missing for each option, from the kernel's config when readable, else from modules.
fn options(host: &dyn Host, release: &str, opts: &[&Opt]) -> Vec<Finding> {
    let config = read_config(host, release);
    let modules = Modules::read(host, release);
    let mut groups: Vec<&'static str> = opts.iter().map(|o| o.group).collect();
    groups.dedup();
    groups
        .into_iter()
        .map(|group| {
            let check = format!("kernel config: {group}");
            let mut missing = Vec::new();
            let mut unloaded = Vec::new();
            for opt in opts.iter().filter(|o| o.group == group) {
                match (&config, opt.module) {
                    (Some((_, text)), module) => match config_value(text, opt.name) {
                        Some('y') => {}
                        Some('m') => {
                            if let Some(m) = module.filter(|m| !modules.loaded(m)) {
                                unloaded.push(m);
                            }
                        }
                        _ => missing.push(*opt),
                    },
                    (None, Some(m)) if modules.loaded(m) => {}
                    (None, Some(m)) if modules.available(m) => unloaded.push(m),
                    (None, None) if inferred_present(host, opt.name) => {}
                    (None, _) => missing.push(*opt),
                }
            }
            let source = config.as_ref().map(|(p, _)| p.as_str()).unwrap_or("loaded and installed modules");
            option_finding(group, check, source, &missing, &unloaded)
        })
        .collect()
}

fn option_finding(group: &str, check: String, source: &str, missing: &[&Opt], unloaded: &[&str]) -> Finding {
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|o| format!("CONFIG_{}", o.name)).collect();
        let mods: Vec<&str> = missing.iter().filter_map(|o| o.module).collect();
        let seen = if group == "ipvs" && !mods.is_empty() {
            // The guides' wording of kube-proxy's error, so a search for it lands here.
            format!("failed to load kernel modules: [{}] ({} not set in {source})", mods.join(" "), names.join(", "))
        } else {
            format!("missing {} (read from {source})", names.join(", "))
        };
        let with = |v: &str| names.iter().map(|n| format!("{n}={v}")).collect::<Vec<_>>().join(", ");
        let remedy = if mods.len() == missing.len() {
            format!("modprobe -a {} (if that fails: install a kernel built with {})", mods.join(" "), with("m"))
        } else {
            format!("install a kernel built with {}, then reboot", with("y"))
        };
        return Finding::fail(G, check, seen, remedy);
    }
    if !unloaded.is_empty() {
        let list = unloaded.join(" ");
        let remedy = format!("modprobe -a {list} && printf '%s\\n' {list} > /etc/modules-load.d/rkube-{group}.conf");
        return Finding::warn(G, check, format!("modules not loaded yet: {list}"), remedy);
    }
    Finding::ok(G, check, format!("all set (read from {source})"))
}

/// The kernel's build configuration and where it was read, when readable.
fn read_config(host: &dyn Host, release: &str) -> Option<(String, String)> {
    let boot = format!("/boot/config-{release}");
    if let Some(text) = host.read(&boot) {
        return Some((boot, text));
    }
    if host.exists("/proc/config.gz") {
        let out = host.run("gzip", &["-dc", "/proc/config.gz"]).filter(|o| o.success && !o.stdout.is_empty())?;
        return Some(("/proc/config.gz".into(), out.stdout));
    }
    None
}

fn config_value(text: &str, name: &str) -> Option<char> {
    let key = format!("CONFIG_{name}=");
    text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.chars().next())
}

/// Namespaces and cgroups have no modules: without the config, their files show them.
fn inferred_present(host: &dyn Host, name: &str) -> bool {
    let controller = |c: &str| {
        host.read("/proc/cgroups").is_some_and(|t| t.lines().any(|l| l.split_whitespace().next() == Some(c)))
            || host.read("/sys/fs/cgroup/cgroup.controllers").is_some_and(|t| t.split_whitespace().any(|w| w == c))
    };
    match name {
        "NAMESPACES" | "NET_NS" => host.exists("/proc/self/ns/net"),
        "PID_NS" => host.exists("/proc/self/ns/pid"),
        "IPC_NS" => host.exists("/proc/self/ns/ipc"),
        "UTS_NS" => host.exists("/proc/self/ns/uts"),
        "CGROUPS" => host.exists("/proc/self/cgroup"),
        "CGROUP_CPUACCT" => controller("cpuacct") || controller("cpu"),
        "CGROUP_DEVICE" => controller("devices") || host.exists("/sys/fs/cgroup/cgroup.controllers"),
        "CGROUP_FREEZER" => controller("freezer") || host.exists("/sys/fs/cgroup/cgroup.controllers"),
        "CGROUP_SCHED" => controller("cpu"),
        "CPUSETS" => controller("cpuset"),
        "MEMCG" => controller("memory"),
        "CGROUP_PIDS" => controller("pids"),
        _ => false,
    }
}

/// Loaded modules (`/proc/modules`, `/sys/module`) and installed ones (`/lib/modules/<release>`).
struct Modules {
    loaded: Vec<String>,
    builtin: String,
    installed: String,
}

impl Modules {
    fn read(host: &dyn Host, release: &str) -> Modules {
        let mut loaded: Vec<String> = host
            .read("/proc/modules")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        loaded.extend(host.read_dir("/sys/module"));
        let dir = format!("/lib/modules/{release}");
        Modules {
            loaded,
            builtin: host.read(&format!("{dir}/modules.builtin")).unwrap_or_default(),
            installed: host.read(&format!("{dir}/modules.dep")).unwrap_or_default(),
        }
    }

    fn loaded(&self, m: &str) -> bool {
        let file = format!("/{m}.ko");
        self.loaded.iter().any(|l| l.eq_ignore_ascii_case(m)) || self.builtin.lines().any(|l| l.ends_with(&file))
    }

    fn available(&self, m: &str) -> bool {
        let file = format!("/{m}.ko");
        self.installed
            .lines()
            .filter_map(|l| l.split(':').next())
            .any(|p| p.ends_with(&file) || p.ends_with(&format!("{file}.xz")) || p.ends_with(&format!("{file}.zst")))
    }
}

#[cfg(test)]
mod tests {
    use crate::fake::FakeHost;
    use crate::{Config, ProxyMode, Status, check_host};

    fn find<'a>(f: &'a [crate::Finding], check: &str) -> &'a crate::Finding {
        f.iter().find(|x| x.check == check).unwrap_or_else(|| panic!("no {check} in {f:#?}"))
    }

    #[test]
    fn missing_vxlan_fails_with_modprobe() {
        let mut h = FakeHost::healthy();
        let cfg = h.files["/boot/config-6.1.0-18-amd64"].replace("CONFIG_VXLAN=y", "# CONFIG_VXLAN is not set");
        h.file("/boot/config-6.1.0-18-amd64", &cfg);
        let f = check_host(&h, &Config::default());
        let n = find(&f, "kernel config: networking");
        assert_eq!(n.status, Status::Fail);
        assert!(n.seen.contains("CONFIG_VXLAN"), "{n:?}");
        assert_eq!(n.remedy.as_deref().map(|r| r.starts_with("modprobe -a vxlan")), Some(true));
    }

    #[test]
    fn ipvs_only_checked_in_ipvs_mode_with_the_guides_message() {
        let mut h = FakeHost::healthy();
        let cfg: String = h.files["/boot/config-6.1.0-18-amd64"]
            .lines()
            .filter(|l| !l.contains("IP_VS"))
            .map(|l| format!("{l}\n"))
            .collect();
        h.file("/boot/config-6.1.0-18-amd64", &cfg);
        let f = check_host(&h, &Config::default());
        assert!(f.iter().all(|x| x.check != "kernel config: ipvs"));
        let f = check_host(&h, &Config { proxy_mode: ProxyMode::Ipvs, ..Config::default() });
        let n = find(&f, "kernel config: ipvs");
        assert_eq!(n.status, Status::Fail);
        assert!(n.seen.starts_with("failed to load kernel modules: [ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh"), "{n:?}");
        assert!(n.remedy.as_deref().is_some_and(|r| r.contains("modprobe -a ip_vs ip_vs_rr")));
    }

    #[test]
    fn ipvs_mode_names_the_dummy_module_of_kube_ipvs0() {
        let mut h = FakeHost::healthy();
        let cfg = h.files["/boot/config-6.1.0-18-amd64"].replace("CONFIG_DUMMY=y", "# CONFIG_DUMMY is not set");
        h.file("/boot/config-6.1.0-18-amd64", &cfg);
        assert_eq!(find(&check_host(&h, &Config::default()), "kernel config: networking").status, Status::Ok);
        let f = check_host(&h, &Config { proxy_mode: ProxyMode::Ipvs, ..Config::default() });
        let n = find(&f, "kernel config: ipvs");
        assert_eq!(n.status, Status::Fail);
        assert!(n.seen.contains("[dummy]") && n.seen.contains("CONFIG_DUMMY"), "{n:?}");
        assert!(n.remedy.as_deref().is_some_and(|r| r.contains("modprobe -a dummy")), "{n:?}");
    }

    #[test]
    fn without_config_falls_back_to_modules() {
        let mut h = FakeHost::healthy();
        h.files.remove("/boot/config-6.1.0-18-amd64");
        h.file("/proc/modules", "overlay 151552 0 - Live 0x0\n");
        h.file("/lib/modules/6.1.0-18-amd64/modules.dep", "kernel/drivers/net/vxlan/vxlan.ko.xz: a.ko\n");
        let f = check_host(&h, &Config::default());
        assert_eq!(find(&f, "kernel config: storage").status, Status::Ok);
        let n = find(&f, "kernel config: networking");
        // veth, bridge and br_netfilter are nowhere: FAIL; vxlan is installed but not loaded.
        assert_eq!(n.status, Status::Fail, "{n:?}");
        assert!(n.seen.contains("CONFIG_VETH") && !n.seen.contains("VXLAN"), "{n:?}");
    }

    #[test]
    fn not_root_and_old_kernel() {
        let mut h = FakeHost::healthy();
        h.euid = 1000;
        h.file("/proc/sys/kernel/osrelease", "4.9.0-8-amd64\n");
        let f = check_host(&h, &Config::default());
        assert_eq!(find(&f, "root").status, Status::Fail);
        assert_eq!(find(&f, "kernel version").status, Status::Warn);
    }
}
