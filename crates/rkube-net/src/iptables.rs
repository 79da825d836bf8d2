//! flannel's iptables rules: `FLANNEL-FWD` (FORWARD accepts the cluster network, closing the FORWARD-DROP pit)
//! and `FLANNEL-POSTRTG` in nat POSTROUTING (masquerade only what leaves the cluster network). Chains are
//! loaded with `iptables-restore --noflush` (declaring a chain flushes only that chain); the jumps are added
//! once, checked with `iptables -C`.

use tokio::process::Command;

use crate::cidr::Ipv4Net;

/// The filter chain.
pub const FWD_CHAIN: &str = "FLANNEL-FWD";
/// The nat chain.
pub const POSTRTG_CHAIN: &str = "FLANNEL-POSTRTG";

/// The `iptables-restore` input for a node holding `subnet` of `network`.
pub fn restore_input(network: Ipv4Net, subnet: Ipv4Net) -> String {
    let masq = "-m comment --comment \"flanneld masq\"";
    let fwd = "-m comment --comment \"flanneld forward\"";
    format!(
        "*filter\n:{FWD_CHAIN} - [0:0]\n\
         -A {FWD_CHAIN} -s {network} {fwd} -j ACCEPT\n\
         -A {FWD_CHAIN} -d {network} {fwd} -j ACCEPT\n\
         COMMIT\n\
         *nat\n:{POSTRTG_CHAIN} - [0:0]\n\
         -A {POSTRTG_CHAIN} -m mark --mark 0x4000/0x4000 {masq} -j RETURN\n\
         -A {POSTRTG_CHAIN} -s {subnet} -d {network} {masq} -j RETURN\n\
         -A {POSTRTG_CHAIN} -s {network} -d {subnet} {masq} -j RETURN\n\
         -A {POSTRTG_CHAIN} ! -s {network} -d {subnet} {masq} -j RETURN\n\
         -A {POSTRTG_CHAIN} -s {network} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully\n\
         -A {POSTRTG_CHAIN} ! -s {network} -d {network} {masq} -j MASQUERADE --random-fully\n\
         COMMIT\n"
    )
}

const JUMPS: [(&str, &str, &str, &str); 2] =
    [("filter", "FORWARD", FWD_CHAIN, "flanneld forward"), ("nat", "POSTROUTING", POSTRTG_CHAIN, "flanneld masq")];

fn jump_args<'a>(op: &'a str, table: &'a str, chain: &'a str, target: &'a str, comment: &'a str) -> Vec<&'a str> {
    vec!["-w", "-t", table, op, chain, "-m", "comment", "--comment", comment, "-j", target]
}

async fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<bool, String> {
    use tokio::io::AsyncWriteExt;
    let mut c = Command::new(cmd);
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("running {cmd}: {e} (install iptables)"))?;
    if let Some(mut si) = child.stdin.take() {
        if let Some(input) = stdin {
            si.write_all(input.as_bytes()).await.map_err(|e| format!("writing to {cmd}: {e}"))?;
        }
        drop(si);
    }
    let out = child.wait_with_output().await.map_err(|e| format!("waiting for {cmd}: {e}"))?;
    if !out.status.success() && stdin.is_some() {
        return Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.status.success())
}

/// Installs (or refreshes) the rules in the calling thread's network namespace.
pub async fn apply(network: Ipv4Net, subnet: Ipv4Net) -> Result<(), String> {
    run("iptables-restore", &["-w", "--noflush"], Some(&restore_input(network, subnet))).await?;
    for (table, chain, target, comment) in JUMPS {
        if !run("iptables", &jump_args("-C", table, chain, target, comment), None).await? {
            let args = jump_args("-I", table, chain, target, comment);
            if !run("iptables", &args, None).await? {
                return Err(format!("iptables {} failed", args.join(" ")));
            }
        }
    }
    Ok(())
}

/// Removes the jumps and both chains; what is already gone is fine.
pub async fn remove() -> Result<(), String> {
    for (table, chain, target, comment) in JUMPS {
        while run("iptables", &jump_args("-D", table, chain, target, comment), None).await? {}
        run("iptables", &["-w", "-t", table, "-F", target], None).await?;
        run("iptables", &["-w", "-t", table, "-X", target], None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_masquerade_only_what_leaves() {
        let r = restore_input("172.30.0.0/16".parse().unwrap(), "172.30.19.0/24".parse().unwrap());
        assert!(r.starts_with("*filter\n:FLANNEL-FWD - [0:0]\n"));
        assert!(r.contains("-A FLANNEL-FWD -s 172.30.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n"));
        assert!(r.contains(
            "-A FLANNEL-POSTRTG -s 172.30.19.0/24 -d 172.30.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN\n"
        ));
        assert!(r.contains("-A FLANNEL-POSTRTG -s 172.30.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully\n"));
        assert_eq!(r.matches("COMMIT\n").count(), 2);
    }
}
