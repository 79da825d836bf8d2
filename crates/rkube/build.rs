//! Links the release binary with the code `rkube agent` runs packed together, then the code `rkube server` runs
//! (the list and the script that regenerates it: `crates/rkube/link-order/`).
//!
//! The binary holds every component, and what `rkube agent` runs was spread over its whole `.text`: a page fault
//! maps the 64 KiB around it, so ~5.5 MiB of executed functions kept ~25 MiB of code resident (BENCHMARKS.md,
//! `bench:node`). LLD's `--symbol-ordering-file` places the listed functions first, in the list's order. Names
//! missing from the binary (changed code) are skipped and their functions keep their place: a stale list costs
//! memory, never correctness. `RKUBE_NO_LINK_ORDER=1` links without it (to compare).

use std::env;
use std::path::PathBuf;

fn main() {
    let list = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link-order/agent-symbols.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=RKUBE_NO_LINK_ORDER");
    // Only where the linker is LLD: Rust's default for x86_64-unknown-linux-gnu since 1.90 (GNU ld has no such
    // option). Debug builds keep the default layout (their functions are not the release ones).
    let lld_default = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    if !lld_default || !release || env::var_os("RKUBE_NO_LINK_ORDER").is_some() || !list.is_file() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=rkube=-Wl,--symbol-ordering-file={}", list.display());
    println!("cargo:rustc-link-arg-bin=rkube=-Wl,--no-warn-symbol-ordering");
}
