//! Removing what pods leave behind: everything of a pod the API no longer has (containers, sandboxes,
//! volumes, the kubelet's files and logs), and, for live pods, dead container instances beyond the newest
//! one per container (kept for `logs --previous`) and old sandboxes left empty.

use std::collections::HashSet;

use rkube_cri::{api, labels};

use crate::runtime_state::{self, CState, PodRuntime};
use crate::worker::Next;
use crate::{Kubelet, Result};

/// Grace for containers of pods the API no longer has (they were terminated already, or force-deleted).
const ORPHAN_GRACE: i64 = 2;

/// Removes everything left of the pod with this UID.
pub(crate) async fn cleanup(k: &Kubelet, uid: &str) -> Result<Next> {
    let rt = runtime_state::fetch(k, uid).await?;
    let mut r = k.runtime.runtime.clone();
    // Names for the log directory, from the sandboxes' labels.
    let sandboxes = r
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: [(labels::POD_UID.to_owned(), uid.to_owned())].into(),
                ..Default::default()
            }),
        })
        .await
        .map_err(rkube_cri::Error::cri("ListPodSandbox"))?
        .into_inner()
        .items;
    k.probes.remove_pod(uid);
    for c in rt.containers.iter().filter(|c| matches!(c.state(), CState::Running | CState::Unknown)) {
        let stopped =
            r.stop_container(api::StopContainerRequest { container_id: c.id.clone(), timeout: ORPHAN_GRACE }).await;
        if let Err(s) = stopped
            && s.code() != tonic::Code::NotFound
        {
            return Err(rkube_cri::Error::Cri { what: format!("StopContainer {}", c.id), source: s }.into());
        }
    }
    let in_sandboxes: HashSet<&str> = rt.sandboxes.iter().map(|s| s.id.as_str()).collect();
    for c in rt.containers.iter().filter(|c| !in_sandboxes.contains(c.sandbox_id.as_str())) {
        remove_container(k, &c.id).await?;
    }
    for s in &rt.sandboxes {
        for call in [true, false] {
            let res = if call {
                r.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }).await.map(|_| ())
            } else {
                r.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: s.id.clone() }).await.map(|_| ())
            };
            if let Err(st) = res
                && st.code() != tonic::Code::NotFound
            {
                let what = format!("{} {}", if call { "StopPodSandbox" } else { "RemovePodSandbox" }, s.id);
                return Err(rkube_cri::Error::Cri { what, source: st }.into());
            }
        }
    }
    // The sandboxes are gone, so the pod's cgroups are empty (a few rmdirs on cgroupfs).
    rkube_cri::podcgroups::remove(uid);
    if let Err(e) = k.volumes.teardown(uid).await {
        tracing::warn!(pod_uid = %uid, error = %e, "tearing down volumes");
        return Ok(Next::After(std::time::Duration::from_secs(5)));
    }
    let pod_dir = k.config.root_dir.join("pods").join(uid);
    let _ = tokio::fs::remove_file(pod_dir.join("etc-hosts")).await;
    let _ = tokio::fs::remove_dir_all(pod_dir.join("containers")).await;
    // Only empty now unless the volume manager left something of its own; never remove through mounts.
    let _ = tokio::fs::remove_dir(&pod_dir).await;
    for s in &sandboxes {
        if let Some(m) = &s.metadata {
            let dir = k.config.pod_logs_dir.join(format!("{}_{}_{}", m.namespace, m.name, m.uid));
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }
    Ok(Next::Done)
}

async fn remove_container(k: &Kubelet, id: &str) -> Result<()> {
    let mut r = k.runtime.runtime.clone();
    match r.remove_container(api::RemoveContainerRequest { container_id: id.to_owned() }).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(rkube_cri::Error::Cri { what: format!("RemoveContainer {id}"), source: s }.into()),
    }
}

/// The dead instances to remove: all but the newest dead one per container name.
pub(crate) fn evictable(rt: &PodRuntime) -> Vec<String> {
    let mut kept: HashSet<&str> = HashSet::new();
    let mut out = vec![];
    for c in &rt.containers {
        if c.state() != CState::Exited {
            continue;
        }
        if !kept.insert(c.name.as_str()) {
            out.push(c.id.clone());
        }
    }
    out
}

/// Removes evictable instances and old sandboxes that are not ready and hold no container any more.
pub(crate) async fn gc(k: &Kubelet, rt: &mut PodRuntime) -> Result<()> {
    let evict = evictable(rt);
    for id in &evict {
        remove_container(k, id).await?;
    }
    rt.containers.retain(|c| !evict.contains(&c.id));
    let used: HashSet<String> = rt.containers.iter().map(|c| c.sandbox_id.clone()).collect();
    let old: Vec<String> =
        rt.sandboxes.iter().skip(1).filter(|s| !s.ready && !used.contains(&s.id)).map(|s| s.id.clone()).collect();
    let mut r = k.runtime.runtime.clone();
    for id in &old {
        let removed = r.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await;
        if let Err(s) = removed
            && s.code() != tonic::Code::NotFound
        {
            return Err(rkube_cri::Error::Cri { what: format!("RemovePodSandbox {id}"), source: s }.into());
        }
    }
    rt.sandboxes.retain(|s| !old.contains(&s.id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_state::ContainerInfo;

    fn c(id: &str, name: &str, state: CState) -> ContainerInfo {
        ContainerInfo { id: id.into(), name: name.into(), state: Some(state), ..Default::default() }
    }

    #[test]
    fn keeps_the_newest_dead_instance_per_container() {
        let rt = PodRuntime {
            sandboxes: vec![],
            containers: vec![
                c("a3", "a", CState::Running),
                c("a2", "a", CState::Exited),
                c("b2", "b", CState::Exited),
                c("a1", "a", CState::Exited),
                c("b1", "b", CState::Exited),
                c("a0", "a", CState::Exited),
            ],
        };
        assert_eq!(evictable(&rt), vec!["a1", "b1", "a0"]);
    }
}
