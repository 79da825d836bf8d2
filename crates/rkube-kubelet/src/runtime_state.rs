//! What the runtime holds for one pod (upstream's `kubecontainer.PodStatus`): its sandboxes and container
//! instances, newest first, read through CRI by the pod's UID label, with termination messages read from the
//! termination-log file or the log tail as upstream does.

use std::collections::HashMap;

use rkube_cri::api;
use rkube_cri::labels;

use crate::Kubelet;

/// A container instance's state as CRI reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited (or failed to start).
    Exited,
    /// The runtime does not know.
    Unknown,
}

impl CState {
    fn from_cri(state: i32) -> CState {
        match api::ContainerState::try_from(state) {
            Ok(api::ContainerState::ContainerCreated) => CState::Created,
            Ok(api::ContainerState::ContainerRunning) => CState::Running,
            Ok(api::ContainerState::ContainerExited) => CState::Exited,
            _ => CState::Unknown,
        }
    }
}

/// One container instance.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContainerInfo {
    /// CRI ID.
    pub(crate) id: String,
    /// The sandbox it runs in.
    pub(crate) sandbox_id: String,
    /// The container's name in the pod spec.
    pub(crate) name: String,
    /// Its state.
    pub(crate) state: Option<CState>,
    /// Creation, start and finish times (Unix nanoseconds; 0 when unset).
    pub(crate) created_at: i64,
    /// Start time.
    pub(crate) started_at: i64,
    /// Finish time.
    pub(crate) finished_at: i64,
    /// Exit code (when exited).
    pub(crate) exit_code: i32,
    /// The runtime's reason (`Completed`, `Error`, `OOMKilled`, `StartError`, ...).
    pub(crate) reason: String,
    /// The runtime's message, enriched with the termination message.
    pub(crate) message: String,
    /// Restart count from the instance's annotation.
    pub(crate) restart_count: i32,
    /// The spec hash from the instance's annotation.
    pub(crate) hash: String,
    /// The image as the runtime names it.
    pub(crate) image: String,
    /// The image reference (digest or ID).
    pub(crate) image_ref: String,
}

impl ContainerInfo {
    /// Its state (Unknown when the runtime did not say).
    pub(crate) fn state(&self) -> CState {
        self.state.unwrap_or(CState::Unknown)
    }
}

/// One sandbox.
#[derive(Clone, Debug, Default)]
pub(crate) struct SandboxInfo {
    /// CRI ID.
    pub(crate) id: String,
    /// Its attempt number.
    pub(crate) attempt: u32,
    /// Whether it is ready.
    pub(crate) ready: bool,
    /// Creation time (Unix nanoseconds).
    pub(crate) created_at: i64,
    /// Its IPs (first is the primary), read for the newest ready sandbox only.
    pub(crate) ips: Vec<String>,
}

/// A pod's runtime state, newest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodRuntime {
    /// Sandboxes, newest first.
    pub(crate) sandboxes: Vec<SandboxInfo>,
    /// Container instances (regular and init), newest first.
    pub(crate) containers: Vec<ContainerInfo>,
}

impl PodRuntime {
    /// The newest instance of a container.
    pub(crate) fn latest(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The newest sandbox.
    pub(crate) fn sandbox(&self) -> Option<&SandboxInfo> {
        self.sandboxes.first()
    }

    /// Whether anything of the pod is still running.
    pub(crate) fn anything_running(&self) -> bool {
        self.sandboxes.iter().any(|s| s.ready) || self.containers.iter().any(|c| c.state() == CState::Running)
    }

    /// Sorts instances newest first.
    pub(crate) fn sort(&mut self) {
        self.sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        self.containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    }
}

/// Upstream's limits on termination messages.
const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_LOG_BYTES: usize = 2048;
const MAX_LOG_LINES: usize = 80;

/// Reads the pod's runtime state by its UID.
pub(crate) async fn fetch(k: &Kubelet, uid: &str) -> crate::Result<PodRuntime> {
    let mut rt = k.runtime.runtime.clone();
    let selector: HashMap<String, String> = [(labels::POD_UID.to_owned(), uid.to_owned())].into();
    let sandboxes = rt
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter { label_selector: selector.clone(), ..Default::default() }),
        })
        .await
        .map_err(rkube_cri::Error::cri("ListPodSandbox"))?
        .into_inner()
        .items;
    let containers = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter { label_selector: selector, ..Default::default() }),
        })
        .await
        .map_err(rkube_cri::Error::cri("ListContainers"))?
        .into_inner()
        .containers;
    let mut out = PodRuntime {
        sandboxes: sandboxes
            .into_iter()
            .map(|s| SandboxInfo {
                attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                ready: s.state == api::PodSandboxState::SandboxReady as i32,
                created_at: s.created_at,
                id: s.id,
                ips: vec![],
            })
            .collect(),
        containers: vec![],
    };
    for c in containers {
        let status = match rt
            .container_status(api::ContainerStatusRequest { container_id: c.id.clone(), verbose: false })
            .await
        {
            Ok(r) => r.into_inner().status,
            // Removed between the list and now.
            Err(s) if s.code() == tonic::Code::NotFound => continue,
            Err(s) => return Err(rkube_cri::Error::Cri { what: format!("ContainerStatus {}", c.id), source: s }.into()),
        };
        let Some(st) = status else { continue };
        out.containers.push(container_info(&c.pod_sandbox_id, st).await);
    }
    out.sort();
    if let Some(first) = out.sandboxes.first_mut().filter(|s| s.ready) {
        match rt
            .pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: first.id.clone(), verbose: false })
            .await
        {
            Ok(r) => {
                if let Some(net) = r.into_inner().status.and_then(|s| s.network) {
                    if !net.ip.is_empty() {
                        first.ips.push(net.ip);
                    }
                    first.ips.extend(net.additional_ips.into_iter().map(|i| i.ip).filter(|i| !i.is_empty()));
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(rkube_cri::Error::Cri { what: "PodSandboxStatus".into(), source: s }.into()),
        }
    }
    Ok(out)
}

async fn container_info(sandbox_id: &str, st: api::ContainerStatus) -> ContainerInfo {
    let state = CState::from_cri(st.state);
    let ann = &st.annotations;
    let mut message = st.message.clone();
    if state == CState::Exited {
        let path = ann.get(labels::TERMINATION_MESSAGE_PATH).cloned().unwrap_or_default();
        let fallback = ann.get(labels::TERMINATION_MESSAGE_POLICY).map(String::as_str) == Some("FallbackToLogsOnError")
            && st.exit_code != 0
            && st.reason != "ContainerCannotRun";
        let host = st.mounts.iter().find(|m| !path.is_empty() && m.container_path == path).map(|m| m.host_path.clone());
        let mut term = match host {
            Some(h) => read_prefix(&h, MAX_MESSAGE_BYTES).await,
            None => String::new(),
        };
        if term.is_empty() && fallback && !st.log_path.is_empty() {
            term = log_tail(&st.log_path).await;
        }
        if !term.is_empty() {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&term);
        }
    }
    ContainerInfo {
        id: st.id,
        sandbox_id: sandbox_id.to_owned(),
        name: st.labels.get(labels::CONTAINER_NAME).cloned().or(st.metadata.map(|m| m.name)).unwrap_or_default(),
        state: Some(state),
        created_at: st.created_at,
        started_at: st.started_at,
        finished_at: st.finished_at,
        exit_code: st.exit_code,
        reason: st.reason,
        message,
        restart_count: ann.get(labels::RESTART_COUNT).and_then(|r| r.parse().ok()).unwrap_or(0),
        hash: ann.get(labels::CONTAINER_HASH).cloned().unwrap_or_default(),
        image: st.image.map(|i| i.image).unwrap_or_default(),
        image_ref: st.image_ref,
    }
}

async fn read_prefix(path: &str, max: usize) -> String {
    match tokio::fs::read(path).await {
        Ok(mut b) => {
            b.truncate(max);
            String::from_utf8_lossy(&b).into_owned()
        }
        Err(_) => String::new(),
    }
}

/// The last lines of a CRI log file (`<time> <stream> <P|F> <text>`), as upstream's
/// `readLastStringFromContainerLogs`: at most 80 lines and 2048 bytes.
async fn log_tail(path: &str) -> String {
    let Ok(data) = tokio::fs::read(path).await else { return String::new() };
    let text = String::from_utf8_lossy(&data);
    let mut out = String::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, body) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
        out.push_str(body);
        if tag != Some("P") {
            out.push('\n');
        }
    }
    let lines: Vec<&str> = out.split_inclusive('\n').collect();
    let tail = lines[lines.len().saturating_sub(MAX_LOG_LINES)..].concat();
    if tail.len() > MAX_LOG_BYTES {
        let mut start = tail.len() - MAX_LOG_BYTES;
        while !tail.is_char_boundary(start) {
            start += 1;
        }
        tail[start..].to_owned()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn log_tail_joins_partial_lines_and_keeps_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut s = String::new();
        for i in 0..100 {
            s.push_str(&format!("2024-01-01T00:00:00Z stdout F line {i}\n"));
        }
        s.push_str("2024-01-01T00:00:00Z stderr P par\n2024-01-01T00:00:00Z stderr F tial\n");
        std::fs::write(&p, s).unwrap();
        let tail = log_tail(p.to_str().unwrap()).await;
        assert!(tail.ends_with("line 99\npartial\n"), "{tail}");
        assert_eq!(tail.lines().count(), 80);
        assert!(tail.starts_with("line 21\n"));
    }
}
