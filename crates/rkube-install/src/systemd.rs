//! systemd itself: whether it manages this host, and `systemctl`.

use std::path::Path;

use crate::Result;

/// Whether systemd is the init system (PID 1) of the host rkube runs on, as `sd_booted()` decides: the
/// directory `/run/systemd/system` exists only when it is.
pub fn is_init() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Runs `systemctl args`.
pub fn systemctl(args: &[&str]) -> Result<String> {
    crate::run("systemctl", args, None)
}

/// Whether `unit` is loaded by systemd (known to it, whether running or not).
pub fn is_loaded(unit: &str) -> bool {
    systemctl(&["show", "--property=LoadState", "--value", unit]).is_ok_and(|s| s.trim() == "loaded")
}
