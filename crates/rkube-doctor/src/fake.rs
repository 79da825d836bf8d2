//! A host with fixed answers for unit tests: a healthy Debian node by default, each test breaking one thing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::host::{CmdOutput, Host};

/// Files, links and command outputs by path; commands are keyed by `program args...`.
pub(crate) struct FakeHost {
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) links: BTreeMap<String, String>,
    pub(crate) dirs: BTreeMap<String, Vec<String>>,
    pub(crate) cmds: BTreeMap<String, CmdOutput>,
    pub(crate) euid: u32,
    pub(crate) free: u64,
}

fn ok(stdout: &str) -> CmdOutput {
    CmdOutput { success: true, stdout: stdout.into(), stderr: String::new() }
}

impl FakeHost {
    /// A healthy node: kernel 6.1 with every option, cgroup v2, sysctls set, iptables 1.8.9 nft with FORWARD
    /// ACCEPT, no swap, no firewall, nothing listening, every binary installed.
    pub(crate) fn healthy() -> FakeHost {
        let mut h = FakeHost {
            files: BTreeMap::new(),
            links: BTreeMap::new(),
            dirs: BTreeMap::new(),
            cmds: BTreeMap::new(),
            euid: 0,
            free: 100 << 30,
        };
        h.file("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
        h.file("/proc/sys/kernel/hostname", "node-1\n");
        let config: String = crate::checks::kernel::all_options().iter().map(|o| format!("CONFIG_{o}=y\n")).collect();
        h.file("/boot/config-6.1.0-18-amd64", &config);
        h.file("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
        h.file("/proc/sys/net/ipv4/ip_forward", "1\n");
        h.file("/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
        h.file("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "1\n");
        h.file("/proc/sys/net/ipv4/conf/all/rp_filter", "2\n");
        h.file("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        h.file("/proc/meminfo", "MemTotal:        8000000 kB\nMemAvailable:    6000000 kB\n");
        h.file("/proc/cpuinfo", "processor\t: 0\nprocessor\t: 1\n");
        let header =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        for t in ["tcp", "tcp6", "udp", "udp6"] {
            h.file(&format!("/proc/net/{t}"), header);
        }
        for b in ["iptables", "iptables-restore", "ip", "mount", "nsenter", "conntrack", "containerd", "runc", "nft"] {
            h.file(&format!("/usr/sbin/{b}"), "");
        }
        for p in ["bridge", "host-local", "loopback", "portmap"] {
            h.file(&format!("/usr/lib/cni/{p}"), "");
        }
        h.cmd("iptables --version", "iptables v1.8.9 (nf_tables)\n");
        h.cmd("iptables -S FORWARD", "-P FORWARD ACCEPT\n");
        h
    }

    pub(crate) fn file(&mut self, path: &str, text: &str) {
        self.files.insert(path.into(), text.into());
    }

    pub(crate) fn cmd(&mut self, line: &str, stdout: &str) {
        self.cmds.insert(line.into(), ok(stdout));
    }
}

impl Host for FakeHost {
    fn read(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn read_dir(&self, path: &str) -> Vec<String> {
        if let Some(d) = self.dirs.get(path) {
            return d.clone();
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .keys()
            .chain(self.links.keys())
            .filter_map(|p| p.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }
    fn read_link(&self, path: &str) -> Option<String> {
        self.links.get(path).cloned()
    }
    fn exists(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.files.contains_key(path)
            || self.files.keys().any(|p| p.starts_with(&prefix))
            || self.dirs.contains_key(path)
    }
    fn run(&self, program: &str, args: &[&str]) -> Option<CmdOutput> {
        let line = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
        self.cmds.get(&line).cloned().or_else(|| self.which(program).map(|_| CmdOutput::default()))
    }
    fn euid(&self) -> u32 {
        self.euid
    }
    fn free_bytes(&self, _path: &Path) -> Option<u64> {
        Some(self.free)
    }
}
