//! rkube's own pause image: the process that holds each pod sandbox's namespaces, built into the binary and
//! imported into the runtime at start, so pods run without any registry.
//!
//! The pause program is hand-assembled machine code in a minimal static ELF, written here as bytes: no crate
//! ships a pause binary, a Rust one would be megabytes (std, panic machinery) where this is 264 bytes, and
//! building one at compile time would need a second target toolchain. It does what upstream's pause does:
//! exits 0 on SIGTERM or SIGINT (it runs as PID 1 of its PID namespace, where signals without a handler
//! are ignored), lets the kernel reap orphaned children (SIGCHLD ignored), and otherwise sleeps in `pause`.

use crate::oci::ImageBuilder;

/// The pause image's name: the sandbox image of every pod.
pub const IMAGE: &str = "rkube.io/pause:1.0";

/// Where the program sits in the image (the image's entrypoint).
pub const PATH: &str = "/pause";

/// Virtual address the single segment is loaded at (the file is mapped whole, headers included).
const BASE: u64 = 0x40_0000;
/// Size of the ELF header plus the one program header: the code starts right after them.
const HEADERS: usize = 64 + 56;

/// x86_64 code and data (offsets from the start of the code, file offset 0x78, address 0x400078).
#[rustfmt::skip]
const X86_64: [u8; 144] = [
    // 00: lea rsi, [rip+0x49]        rsi = &act_exit (0x50)
    0x48, 0x8d, 0x35, 0x49, 0x00, 0x00, 0x00,
    // 07: mov edi, 15                SIGTERM
    0xbf, 0x0f, 0x00, 0x00, 0x00,
    // 0c: call +0x24                 sigaction (0x35)
    0xe8, 0x24, 0x00, 0x00, 0x00,
    // 11: mov edi, 2                 SIGINT (rsi survives syscall: only rcx, r11, rax change)
    0xbf, 0x02, 0x00, 0x00, 0x00,
    // 16: call +0x1a                 sigaction (0x35)
    0xe8, 0x1a, 0x00, 0x00, 0x00,
    // 1b: lea rsi, [rip+0x4e]        rsi = &act_ign (0x70)
    0x48, 0x8d, 0x35, 0x4e, 0x00, 0x00, 0x00,
    // 22: mov edi, 17                SIGCHLD
    0xbf, 0x11, 0x00, 0x00, 0x00,
    // 27: call +0x09                 sigaction (0x35)
    0xe8, 0x09, 0x00, 0x00, 0x00,
    // 2c: mov eax, 34                loop: pause()
    0xb8, 0x22, 0x00, 0x00, 0x00,
    // 31: syscall
    0x0f, 0x05,
    // 33: jmp -9                     back to 2c (pause returns after any handled signal)
    0xeb, 0xf7,
    // 35: xor edx, edx               sigaction: rt_sigaction(edi, rsi, oldact = NULL, sigsetsize = 8)
    0x31, 0xd2,
    // 37: mov r10d, 8
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
    // 3d: mov eax, 13                rt_sigaction
    0xb8, 0x0d, 0x00, 0x00, 0x00,
    // 42: syscall
    0x0f, 0x05,
    // 44: ret
    0xc3,
    // 45: xor edi, edi               handler: exit_group(0); never returns, so no SA_RESTORER is needed
    0x31, 0xff,
    // 47: mov eax, 231               exit_group
    0xb8, 0xe7, 0x00, 0x00, 0x00,
    // 4c: syscall
    0x0f, 0x05,
    // 4e: padding to align the data
    0x00, 0x00,
    // 50: act_exit: struct sigaction { handler = 0x4000bd (0x400078 + 0x45), flags = SA_RESTORER, restorer =
    //     the handler again, mask = 0 }. x86_64 refuses to deliver a handled signal (SIGSEGV instead) unless
    //     SA_RESTORER gives a return address; the handler never returns, so any address will do.
    0xbd, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
    0xbd, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    // 70: act_ign: { handler = SIG_IGN (1), flags = SA_NOCLDWAIT (2), restorer = 0, mask = 0 }
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
/// Offset of the x86_64 signal handler in [`X86_64`] (checked against `act_exit` by a test).
#[cfg(test)]
const X86_64_HANDLER: usize = 0x45;

/// aarch64 code and data (little-endian words; offsets from the start of the code, address 0x400078).
/// arm64 has no `pause` syscall: `ppoll(NULL, 0, NULL, NULL)` sleeps the same way, until a signal.
/// Encodings checked with `llvm-mc -triple=aarch64 -show-encoding`; not run on this (x86_64) machine.
#[rustfmt::skip]
const AARCH64: [u8; 160] = [
    0x01, 0x03, 0x00, 0x10, // 00: adr x1, +0x60           x1 = &act_exit (0x60)
    0xe0, 0x01, 0x80, 0xd2, // 04: mov x0, #15             SIGTERM
    0x0d, 0x00, 0x00, 0x94, // 08: bl +0x34                sigaction (0x3c)
    0x40, 0x00, 0x80, 0xd2, // 0c: mov x0, #2              SIGINT (svc keeps x1)
    0x0b, 0x00, 0x00, 0x94, // 10: bl +0x2c                sigaction
    0x61, 0x03, 0x00, 0x10, // 14: adr x1, +0x6c           x1 = &act_ign (0x80)
    0x20, 0x02, 0x80, 0xd2, // 18: mov x0, #17             SIGCHLD
    0x08, 0x00, 0x00, 0x94, // 1c: bl +0x20                sigaction
    0x00, 0x00, 0x80, 0xd2, // 20: mov x0, #0              loop: ppoll(fds = NULL,
    0x01, 0x00, 0x80, 0xd2, // 24: mov x1, #0                nfds = 0,
    0x02, 0x00, 0x80, 0xd2, // 28: mov x2, #0                timeout = NULL (forever),
    0x03, 0x00, 0x80, 0xd2, // 2c: mov x3, #0                sigmask = NULL)
    0x28, 0x09, 0x80, 0xd2, // 30: mov x8, #73             ppoll
    0x01, 0x00, 0x00, 0xd4, // 34: svc #0
    0xfa, 0xff, 0xff, 0x17, // 38: b -0x18                 back to 20
    0x02, 0x00, 0x80, 0xd2, // 3c: mov x2, #0              sigaction: rt_sigaction(x0, x1, NULL, 8)
    0x03, 0x01, 0x80, 0xd2, // 40: mov x3, #8
    0xc8, 0x10, 0x80, 0xd2, // 44: mov x8, #134            rt_sigaction
    0x01, 0x00, 0x00, 0xd4, // 48: svc #0
    0xc0, 0x03, 0x5f, 0xd6, // 4c: ret
    0x00, 0x00, 0x80, 0xd2, // 50: mov x0, #0              handler: exit_group(0)
    0xc8, 0x0b, 0x80, 0xd2, // 54: mov x8, #94             exit_group
    0x01, 0x00, 0x00, 0xd4, // 58: svc #0
    0x00, 0x00, 0x00, 0x00, // 5c: padding
    // 60: act_exit: { handler = 0x4000c8 (0x400078 + 0x50), flags = 0, restorer = 0, mask = 0 }
    0xc8, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    // 80: act_ign: { handler = SIG_IGN (1), flags = SA_NOCLDWAIT (2), restorer = 0, mask = 0 }
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
#[cfg(test)]
const AARCH64_HANDLER: usize = 0x50;

/// ELF machine numbers.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// A static ELF64 executable: the ELF header, one `PT_LOAD` program header mapping the whole file read+execute
/// at [`BASE`], then `code` (which starts at the entry point).
fn elf(machine: u16, code: &[u8]) -> Vec<u8> {
    let size = (HEADERS + code.len()) as u64;
    let entry = BASE + HEADERS as u64;
    let mut out = Vec::with_capacity(size as usize);
    // ELF header. e_ident: magic, ELFCLASS64, little-endian, version 1, System V ABI, padding.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC (fixed address, no relocation)
    out.extend_from_slice(&machine.to_le_bytes()); // e_machine
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes()); // e_entry
    out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff: program headers right after this header
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx: no sections
    // Program header: PT_LOAD, PF_R | PF_X, the whole file from offset 0 at BASE.
    out.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // p_flags: read + execute
    out.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    out.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    out.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    out.extend_from_slice(&size.to_le_bytes()); // p_filesz
    out.extend_from_slice(&size.to_le_bytes()); // p_memsz
    out.extend_from_slice(&0x1_0000u64.to_le_bytes()); // p_align: 64 KiB (fits 4K and 64K pages)
    out.extend_from_slice(code);
    out
}

/// The pause program for this host's architecture (x86_64 or aarch64; x86_64 elsewhere, where sandboxes
/// cannot start anyway).
pub fn binary() -> Vec<u8> {
    if cfg!(target_arch = "aarch64") { elf(EM_AARCH64, &AARCH64) } else { elf(EM_X86_64, &X86_64) }
}

/// The pause image as an OCI image-layout tar: `/pause` as entrypoint, run as root (it needs nothing else).
pub fn archive() -> Vec<u8> {
    let image = ImageBuilder::new(IMAGE).file(PATH, binary(), 0o755).entrypoint([PATH]);
    // Building from fixed in-memory entries only fails if memory does: treat it as the bug it would be.
    image.build().unwrap_or_else(|e| panic!("building the built-in pause image: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_point_into_the_code() {
        let at = |code: &[u8], offset: usize| u64::from_le_bytes(code[offset..offset + 8].try_into().unwrap());
        assert_eq!(at(&X86_64, 0x50), BASE + HEADERS as u64 + X86_64_HANDLER as u64);
        assert_eq!(at(&AARCH64, 0x60), BASE + HEADERS as u64 + AARCH64_HANDLER as u64);
        assert_eq!(elf(EM_X86_64, &X86_64).len(), 264);
    }

    /// Runs the program itself (no container): it must keep sleeping, then exit 0 on SIGTERM and SIGINT.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn runs_sleeps_and_exits_on_sigterm() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, binary()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for signal in ["-TERM", "-INT"] {
            let mut child = std::process::Command::new(&path).spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(child.try_wait().unwrap().is_none(), "pause exited on its own");
            let pid = child.id().to_string();
            std::process::Command::new("kill").args([signal, &pid]).status().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(std::time::Instant::now() < deadline, "pause ignored {signal}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            assert_eq!(status.code(), Some(0), "{signal}");
        }
    }
}
