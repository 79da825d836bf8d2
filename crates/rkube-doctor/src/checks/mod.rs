//! The host checks, one module per concern; each `run` appends its findings.

pub(crate) mod binaries;
pub(crate) mod cgroups;
pub(crate) mod iptables;
pub(crate) mod kernel;
pub(crate) mod ports;
pub(crate) mod resources;
pub(crate) mod security;
pub(crate) mod sysctl;

/// The first line of a file, trimmed.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
