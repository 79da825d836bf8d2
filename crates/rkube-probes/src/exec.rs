//! Commands in containers through CRI `ExecSync` (exec probes and hooks), with the kubelet's error texts
//! (`command 'sh -c exit 1' exited with 1: `, `command timed out: "sleep 5" timed out after 1s`), and the
//! `$(VAR)` expansion exec probes get from the container's static environment.

use std::time::Duration;

use k8s_openapi::api::core::v1::EnvVar;

use crate::gostr;

/// Upstream keeps at most this much of an exec probe's output.
const MAX_OUTPUT: usize = 10 * 1024;
/// Slack beyond the command's own timeout for the runtime to kill it and answer.
const RUNTIME_SLACK: Duration = Duration::from_secs(10);

/// Runs commands in containers.
#[derive(Clone)]
pub(crate) enum Executor {
    /// The node's CRI runtime.
    Cri(Box<rkube_cri::Runtime>),
    /// A scripted runtime for the worker tests (no container can run in a unit test).
    #[cfg(test)]
    Fake(std::sync::Arc<FakeExec>),
}

/// A scripted `ExecSync`: the command and its timeout in, the result out.
#[cfg(test)]
pub(crate) type FakeExec = dyn Fn(&[String], Duration) -> Result<Output, ExecError> + Send + Sync;

/// What a finished command left.
#[derive(Clone, Debug, Default)]
pub(crate) struct Output {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) exit_code: i32,
}

impl Output {
    /// stdout then stderr, as the kubelet's `RunInContainer` joins them.
    pub(crate) fn combined(&self) -> Vec<u8> {
        let mut out = self.stdout.clone();
        out.extend_from_slice(&self.stderr);
        out
    }
}

/// Why a command did not finish.
#[derive(Clone, Debug)]
pub(crate) enum ExecError {
    /// It ran past its timeout (the message is the kubelet's).
    TimedOut(String),
    /// The runtime refused or failed the call (Go's `rpc error: code = ... desc = ...`).
    Runtime(String),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::TimedOut(m) | ExecError::Runtime(m) => f.write_str(m),
        }
    }
}

impl Executor {
    /// Runs `cmd` in the container; `timeout` zero means none.
    pub(crate) async fn exec_sync(
        &self,
        container_id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<Output, ExecError> {
        let timed_out = || {
            ExecError::TimedOut(format!(
                "command timed out: {} timed out after {}",
                gostr::quote(&cmd.join(" ")),
                gostr::duration(timeout)
            ))
        };
        match self {
            Executor::Cri(runtime) => {
                let request = rkube_cri::api::ExecSyncRequest {
                    container_id: container_id.to_owned(),
                    cmd: cmd.to_vec(),
                    timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                };
                let mut client = runtime.runtime.clone();
                let call = client.exec_sync(request);
                let answer = if timeout.is_zero() {
                    call.await
                } else {
                    match tokio::time::timeout(timeout + RUNTIME_SLACK, call).await {
                        Ok(answer) => answer,
                        Err(_) => return Err(timed_out()),
                    }
                };
                match answer {
                    Ok(r) => {
                        let r = r.into_inner();
                        Ok(Output { stdout: r.stdout, stderr: r.stderr, exit_code: r.exit_code })
                    }
                    Err(status) if status.code() == tonic::Code::DeadlineExceeded => Err(timed_out()),
                    Err(status) => Err(ExecError::Runtime(format!(
                        "rpc error: code = {:?} desc = {}",
                        status.code(),
                        status.message()
                    ))),
                }
            }
            #[cfg(test)]
            Executor::Fake(f) => f(cmd, timeout),
        }
    }
}

/// The error text the kubelet gives a command that exited non-zero.
pub(crate) fn exit_error(cmd: &[String], out: &Output) -> String {
    format!("command '{}' exited with {}: {}", cmd.join(" "), out.exit_code, String::from_utf8_lossy(&out.stderr))
}

/// Keeps the first 10 KiB of a probe's output.
pub(crate) fn truncate_output(mut out: Vec<u8>) -> String {
    out.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&out).into_owned()
}

/// Expands `$(VAR)` in `cmd` from the literal `value`s of `env` (upstream's `ExpandContainerCommandOnlyStatic`):
/// `$$` is a literal `$`, unknown or unterminated references stay as written.
pub(crate) fn expand(cmd: &[String], env: &[EnvVar]) -> Vec<String> {
    cmd.iter().map(|arg| expand_one(arg, env)).collect()
}

fn expand_one(input: &str, env: &[EnvVar]) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.extend_from_slice(&bytes[checkpoint..cursor]);
            let rest = &bytes[cursor + 1..];
            let advance = match rest[0] {
                b'$' => {
                    out.push(b'$');
                    1
                }
                b'(' => match rest.iter().position(|&b| b == b')') {
                    Some(close) => {
                        let name = String::from_utf8_lossy(&rest[1..close]);
                        // Later entries win, as Go's map built in order.
                        match env.iter().rev().find(|e| e.name == name) {
                            Some(e) => out.extend_from_slice(e.value.as_deref().unwrap_or("").as_bytes()),
                            None => out.extend_from_slice(format!("$({name})").as_bytes()),
                        }
                        close + 1
                    }
                    None => {
                        out.extend_from_slice(b"$(");
                        1
                    }
                },
                other => {
                    out.push(b'$');
                    out.push(other);
                    1
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < bytes.len() {
        out.extend_from_slice(&bytes[checkpoint..]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
    }

    #[test]
    fn expands_static_env_like_upstream() {
        let e = vec![env("A", "1"), env("B", "two")];
        let cmd: Vec<String> =
            ["$(A)", "x$(B)y", "$(C)", "$$(A)", "$(A", "a$b", "$", "cost $$5"].map(String::from).into();
        assert_eq!(expand(&cmd, &e), ["1", "xtwoy", "$(C)", "$(A)", "$(A", "a$b", "$", "cost $5"]);
    }

    #[test]
    fn exit_error_wording() {
        let cmd: Vec<String> = ["sh", "-c", "exit 1"].map(String::from).into();
        let out = Output { exit_code: 1, ..Default::default() };
        assert_eq!(exit_error(&cmd, &out), "command 'sh -c exit 1' exited with 1: ");
    }
}
