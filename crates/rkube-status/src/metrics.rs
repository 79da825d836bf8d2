//! The process metrics every upstream component exposes (client_golang's process collector), read from
//! /proc/self.

use std::fmt::Write as _;

/// `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_start_time_seconds` and `process_open_fds` in Prometheus text format; a figure /proc does not
/// give is left out rather than reported as 0.
pub fn process_metrics() -> String {
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().and_then(stat_fields);
    let ticks = clock_ticks();
    let page = page_size();
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    if let Some(f) = &fields {
        if let (Some(utime), Some(stime)) = (field(f, 14), field(f, 15)) {
            gauge(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                "counter",
                (utime + stime) / ticks,
            );
        }
        if let Some(vsize) = field(f, 23) {
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vsize);
        }
        if let Some(rss) = field(f, 24) {
            gauge("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", rss * page);
        }
        if let (Some(start), Some(boot)) = (field(f, 22), boot_time()) {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                "gauge",
                boot + start / ticks,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge("process_open_fds", "Number of open file descriptors.", "gauge", fds.count() as f64);
    }
    out
}

/// The fields of /proc/self/stat after the command name (which may hold spaces), numbered as proc(5) numbers
/// them from 3 (`state`).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// Field `n` as proc(5) numbers it (1-based; the list starts at field 3).
fn field(fields: &[&str], n: usize) -> Option<f64> {
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

fn page_size() -> f64 {
    rustix::param::page_size() as f64
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 123456 789";
        let f = stat_fields(stat).unwrap_or_default();
        assert_eq!(field(&f, 3), None, "state is not a number");
        assert_eq!(field(&f, 14), Some(250.0));
        assert_eq!(field(&f, 15), Some(50.0));
        assert_eq!(field(&f, 22), Some(1000.0));
        assert_eq!(field(&f, 24), Some(789.0));
    }

    #[test]
    fn this_process_reports_its_memory_and_cpu() {
        let text = process_metrics();
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(rss.is_some_and(|r| r > 1024.0 * 1024.0), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_start_time_seconds "), "{text}");
    }
}
