//! The node's own usage, read from the kernel as cAdvisor does for the root cgroup: cumulative CPU time,
//! memory (working set = usage minus inactive file pages), page faults, boot time and filesystem sizes.

use std::path::Path;

/// The node's memory, in bytes.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Memory {
    pub(crate) available: u64,
    pub(crate) usage: u64,
    pub(crate) working_set: u64,
    pub(crate) rss: u64,
    pub(crate) page_faults: u64,
    pub(crate) major_page_faults: u64,
}

/// A filesystem's size, in bytes and inodes.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Fs {
    pub(crate) capacity: u64,
    pub(crate) available: u64,
    pub(crate) used: u64,
    pub(crate) inodes: u64,
    pub(crate) inodes_free: u64,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `key value` (or `key: value kB`) lines as a lookup.
pub(crate) fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?.trim_end_matches(':');
        (k == key).then(|| it.next()?.parse().ok())?
    })
}

/// Cumulative CPU time of the whole node, in nanoseconds.
pub(crate) fn cpu_usage_ns() -> Option<u64> {
    for p in ["/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpuacct/cpuacct.usage"] {
        if let Some(v) = read(p).and_then(|s| s.trim().parse().ok()) {
            return Some(v);
        }
    }
    if let Some(usec) = read("/sys/fs/cgroup/cpu.stat").and_then(|s| field(&s, "usage_usec")) {
        return Some(usec * 1000);
    }
    // /proc/stat counts in USER_HZ (100 on Linux): every state but idle and iowait is busy time.
    let stat = read("/proc/stat")?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let busy: u64 = v.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, x)| x).sum();
    Some(busy * 10_000_000)
}

/// The node's memory figures.
pub(crate) fn memory() -> Memory {
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let kb = |k: &str| field(&meminfo, k).unwrap_or(0) * 1024;
    let total = kb("MemTotal");
    let vmstat = read("/proc/vmstat").unwrap_or_default();
    let mut m = Memory {
        available: kb("MemAvailable"),
        usage: total.saturating_sub(kb("MemFree")),
        working_set: total.saturating_sub(kb("MemAvailable")),
        rss: kb("AnonPages"),
        page_faults: field(&vmstat, "pgfault").unwrap_or(0),
        major_page_faults: field(&vmstat, "pgmajfault").unwrap_or(0),
    };
    // cgroup v1's root memory cgroup is what cAdvisor reports for the node.
    if let (Some(usage), Some(stat)) =
        (read("/sys/fs/cgroup/memory/memory.usage_in_bytes"), read("/sys/fs/cgroup/memory/memory.stat"))
        && let Ok(usage) = usage.trim().parse::<u64>()
    {
        m.usage = usage;
        m.working_set = usage.saturating_sub(field(&stat, "total_inactive_file").unwrap_or(0));
        m.rss = field(&stat, "total_rss").unwrap_or(m.rss);
    }
    m
}

/// When the node booted, in seconds since the epoch.
pub(crate) fn boot_time() -> Option<i64> {
    read("/proc/stat").and_then(|s| field(&s, "btime")).and_then(|v| i64::try_from(v).ok())
}

/// The filesystem holding `path`.
pub(crate) fn fs(path: &Path) -> Option<Fs> {
    let s = rustix::fs::statvfs(path).ok()?;
    let frsize = s.f_frsize.max(1);
    Some(Fs {
        capacity: s.f_blocks * frsize,
        available: s.f_bavail * frsize,
        used: s.f_blocks.saturating_sub(s.f_bfree) * frsize,
        inodes: s.f_files,
        inodes_free: s.f_ffree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_live_values() {
        assert_eq!(field("MemTotal:  16 kB\nMemFree: 4 kB\n", "MemFree"), Some(4));
        assert_eq!(field("pgfault 12\npgmajfault 3\n", "pgmajfault"), Some(3));
        assert_eq!(field("a 1\n", "b"), None);
        // The real host: figures are there and consistent.
        let m = memory();
        assert!(m.working_set > 0 && m.available > 0, "{m:?}");
        let a = cpu_usage_ns().expect("cpu");
        assert!(a > 0);
        assert!(boot_time().expect("btime") > 1_000_000_000);
        let f = fs(Path::new("/")).expect("statvfs /");
        assert!(f.capacity >= f.used && f.capacity > 0);
    }
}
