//! Running the rule tools (`iptables-restore`, `iptables`, `nft`, `conntrack`) behind a configurable
//! command prefix, so tests and benchmarks can run them inside a network namespace (`ip netns exec NS`).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::Error;

/// How the proxy runs its tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exec {
    /// Words put before every command, e.g. `["ip", "netns", "exec", "ns1"]`; empty runs them directly.
    pub prefix: Vec<String>,
}

impl Exec {
    fn command(&self, argv: &[&str]) -> Command {
        let mut words = self.prefix.iter().map(String::as_str).chain(argv.iter().copied());
        let first = words.next().unwrap_or("true");
        let mut cmd = Command::new(first);
        cmd.args(words).kill_on_drop(true);
        cmd
    }

    /// Runs `argv` with `input` on stdin; fails with the tool's stderr when it exits non-zero.
    pub async fn run(&self, argv: &[&str], input: Option<&str>) -> Result<String, Error> {
        let what = argv.join(" ");
        let mut cmd = self.command(argv);
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn { what: what.clone(), source })?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).await.map_err(|source| Error::Spawn { what: what.clone(), source })?;
        }
        let out = child.wait_with_output().await.map_err(|source| Error::Spawn { what: what.clone(), source })?;
        if !out.status.success() {
            return Err(Error::Tool {
                what,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `tool` can be run at all (it exists on PATH under the prefix).
    pub async fn available(&self, tool: &str) -> bool {
        let mut cmd = self.command(&[tool, "--version"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }
}
