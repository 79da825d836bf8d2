//! The node's capacity (read from the host) and allocatable (capacity minus reservations and the hard
//! eviction thresholds, as upstream's container manager computes it), as Kubernetes quantities.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rkube_validation::quantity::Quantity as Parsed;

/// Upstream's default hard eviction threshold `memory.available<100Mi`, subtracted from allocatable memory.
pub const EVICTION_MEMORY_AVAILABLE: u64 = 100 << 20;
/// Upstream's default hard eviction threshold `nodefs.available<10%`, subtracted from allocatable storage.
pub const EVICTION_NODEFS_PERCENT: u64 = 10;

/// Resources set aside (`--kube-reserved`, `--system-reserved`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory: u64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: u64,
    /// Process IDs.
    pub pid: u64,
}

impl Reserved {
    /// Parses `cpu=100m,memory=256Mi[,ephemeral-storage=1Gi][,pid=1000]` (empty means nothing reserved).
    pub fn parse(text: &str) -> Result<Reserved, String> {
        let mut r = Reserved::default();
        let mut problems = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                problems.push(format!("{item:?} is not name=quantity"));
                continue;
            };
            let q = match Parsed::parse(value.trim()) {
                Ok(q) if !q.is_negative() => q,
                Ok(_) => {
                    problems.push(format!("{name} must not be negative"));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("{name}={value}: {e}"));
                    continue;
                }
            };
            let milli = q.milli_value().and_then(|m| u64::try_from(m).ok()).unwrap_or(u64::MAX);
            let whole = milli.div_ceil(1000);
            match name.trim() {
                "cpu" => r.cpu_milli = milli,
                "memory" => r.memory = whole,
                "ephemeral-storage" => r.ephemeral_storage = whole,
                "pid" => r.pid = whole,
                other => problems
                    .push(format!("cannot reserve {other:?} resource (only cpu, memory, ephemeral-storage and pid)")),
            }
        }
        if problems.is_empty() { Ok(r) } else { Err(problems.join("; ")) }
    }
}

/// What the node has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Online CPUs, in millicores.
    pub cpu_milli: u64,
    /// `MemTotal`, bytes.
    pub memory: u64,
    /// Size of the filesystem holding the agent's data, bytes.
    pub ephemeral_storage: u64,
    /// `--max-pods`.
    pub pods: u64,
    /// Pre-allocated huge pages per page size (`2Mi` → bytes).
    pub hugepages: BTreeMap<String, u64>,
}

impl Capacity {
    /// Reads the host: CPUs and memory from /proc, storage from `statvfs(data_dir)`, huge pages from sysfs.
    pub fn from_host(data_dir: &Path, max_pods: u32) -> Capacity {
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let storage = rustix::fs::statvfs(data_dir).map(|s| s.f_blocks.saturating_mul(s.f_frsize)).unwrap_or_default();
        Capacity {
            cpu_milli: cpus * 1000,
            memory: meminfo_kib(&meminfo, "MemTotal") * 1024,
            ephemeral_storage: storage,
            pods: u64::from(max_pods),
            hugepages: hugepages(Path::new("/sys/kernel/mm/hugepages")),
        }
    }

    /// `status.capacity`.
    pub fn quantities(&self) -> BTreeMap<String, Quantity> {
        self.list(self.cpu_milli, self.memory, self.ephemeral_storage)
    }

    /// `status.allocatable`: capacity minus both reservations and the hard eviction thresholds (memory also
    /// minus pre-allocated huge pages), never below zero.
    pub fn allocatable(&self, kube: &Reserved, system: &Reserved) -> BTreeMap<String, Quantity> {
        let huge: u64 = self.hugepages.values().sum();
        let cpu = self.cpu_milli.saturating_sub(kube.cpu_milli + system.cpu_milli);
        let memory =
            self.memory.saturating_sub(kube.memory + system.memory + EVICTION_MEMORY_AVAILABLE).saturating_sub(huge);
        let storage = self
            .ephemeral_storage
            .saturating_sub(kube.ephemeral_storage + system.ephemeral_storage)
            .saturating_sub(nodefs_threshold(self.ephemeral_storage));
        self.list(cpu, memory, storage)
    }

    fn list(&self, cpu_milli: u64, memory: u64, storage: u64) -> BTreeMap<String, Quantity> {
        let mut m = BTreeMap::new();
        m.insert("cpu".to_owned(), Quantity(cpu(cpu_milli)));
        m.insert("memory".to_owned(), Quantity(binary(memory)));
        m.insert("ephemeral-storage".to_owned(), Quantity(binary(storage)));
        m.insert("pods".to_owned(), Quantity(self.pods.to_string()));
        for (size, bytes) in &self.hugepages {
            m.insert(format!("hugepages-{size}"), Quantity(binary(*bytes)));
        }
        m
    }
}

/// The `nodefs.available` threshold in bytes, rounded up to whole KiB so allocatable keeps a binary unit.
fn nodefs_threshold(storage: u64) -> u64 {
    (storage / 100 * EVICTION_NODEFS_PERCENT).div_ceil(1024) * 1024
}

/// A value of `/proc/meminfo` in KiB (0 when missing).
fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Pre-allocated huge pages per size from `/sys/kernel/mm/hugepages/hugepages-<n>kB/nr_hugepages`.
fn hugepages(dir: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return m };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kib) = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")?.parse::<u64>().ok()) else {
            continue;
        };
        let pages: u64 = std::fs::read_to_string(e.path().join("nr_hugepages"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        m.insert(binary(kib * 1024), pages * kib * 1024);
    }
    m
}

/// CPU as upstream prints it: whole cores plainly, else millicores.
fn cpu(milli: u64) -> String {
    if milli.is_multiple_of(1000) { (milli / 1000).to_string() } else { format!("{milli}m") }
}

/// Bytes in the largest binary unit that divides them (`8148348Ki`, `2Mi`, `0`).
fn binary(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    let mut n = bytes;
    let mut unit = 0;
    while n.is_multiple_of(1024) && unit < 6 {
        n /= 1024;
        unit += 1;
    }
    format!("{n}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_parsing() {
        let r = Reserved::parse("cpu=100m,memory=256Mi").unwrap();
        assert_eq!(r, Reserved { cpu_milli: 100, memory: 256 << 20, ..Reserved::default() });
        let r = Reserved::parse(" cpu=1.5, memory=1G, ephemeral-storage=1Gi, pid=100 ").unwrap();
        assert_eq!(r.cpu_milli, 1500);
        assert_eq!(r.memory, 1_000_000_000);
        assert_eq!(r.ephemeral_storage, 1 << 30);
        assert_eq!(r.pid, 100);
        assert_eq!(Reserved::parse("").unwrap(), Reserved::default());
        let err = Reserved::parse("cpu=x,gpu=1,memory").unwrap_err();
        assert!(err.contains("cpu=x") && err.contains("cannot reserve \"gpu\"") && err.contains("\"memory\""), "{err}");
        assert!(Reserved::parse("memory=-1Mi").unwrap_err().contains("negative"));
    }

    #[test]
    fn allocatable_subtracts_reservations_and_eviction() {
        let cap = Capacity {
            cpu_milli: 4000,
            memory: 8 << 30,
            ephemeral_storage: 100 << 30,
            pods: 110,
            hugepages: BTreeMap::from([("2Mi".to_owned(), 0), ("1Gi".to_owned(), 1 << 30)]),
        };
        let r = Reserved::parse("cpu=100m,memory=256Mi").unwrap();
        let q = cap.quantities();
        assert_eq!(q["cpu"].0, "4");
        assert_eq!(q["memory"].0, "8Gi");
        assert_eq!(q["pods"].0, "110");
        assert_eq!(q["hugepages-2Mi"].0, "0");
        assert_eq!(q["hugepages-1Gi"].0, "1Gi");
        let a = cap.allocatable(&r, &r);
        assert_eq!(a["cpu"].0, "3800m");
        // 8Gi - 2×256Mi - 100Mi - 1Gi huge pages = 6556Mi.
        assert_eq!(a["memory"].0, "6556Mi");
        // 100Gi minus 10% (the nodefs threshold), in KiB.
        assert_eq!(a["ephemeral-storage"].0, "90Gi");
        assert_eq!(a["pods"].0, "110");
        let none = Capacity { cpu_milli: 100, memory: 1 << 20, ..Capacity::default() }.allocatable(&r, &r);
        assert_eq!((none["cpu"].0.as_str(), none["memory"].0.as_str()), ("0", "0"));
    }

    #[test]
    fn host_and_formats() {
        assert_eq!(meminfo_kib("MemTotal:       16303428 kB\nMemFree: 1 kB\n", "MemTotal"), 16303428);
        assert_eq!(meminfo_kib("MemFree: 1 kB\n", "MemTotal"), 0);
        assert_eq!(binary(16303428 * 1024), "16303428Ki");
        assert_eq!(binary(1000), "1000");
        let cap = Capacity::from_host(Path::new("/"), 110);
        assert!(cap.cpu_milli >= 1000 && cap.memory > 0 && cap.ephemeral_storage > 0, "{cap:?}");
    }
}
