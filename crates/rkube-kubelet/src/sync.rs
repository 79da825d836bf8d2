//! One sync of a live pod (upstream's `syncPod` and the runtime's `SyncPod`) and the termination of a deleted
//! one (`syncTerminatingPod`, `syncTerminatedPod`, then the status manager's final delete).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use rkube_client::events::EventType;
use rkube_cri::{api, labels};

use crate::actions::{self, Actions};
use crate::containers::{self, backoff_key};
use crate::kill;
use crate::runtime_state::{self, CState, PodRuntime};
use crate::state::uid;
use crate::status_write;
use crate::worker::{Next, RESYNC};
use crate::{Kubelet, Result};

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Syncs a pod that is not being deleted.
pub(crate) async fn sync(k: &Kubelet, pod: &Pod) -> Result<Next> {
    let pod_uid = uid(pod).to_owned();
    let mut rt = runtime_state::fetch(k, &pod_uid).await?;
    if is_terminal(pod) {
        return finished(k, pod, &rt).await;
    }
    // Volumes come before the sandbox (upstream waits for attach and mount first).
    if let Err(e) = k.volumes.setup(pod).await {
        k.pod_event(pod, EventType::Warning, "FailedMount", &e.to_string()).await;
        let n = {
            let mut m = k.memory();
            let n = m.mount_failures.entry(pod_uid.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        status_write::write(k, pod, &rt, false).await?;
        return Ok(Next::After(Duration::from_millis(500u64 << n.min(7)).min(RESYNC)));
    }
    k.memory().mount_failures.remove(&pod_uid);
    let hash = |c: &k8s_openapi::api::core::v1::Container| crate::spec::container_hash(c);
    let verdicts = k.memory().verdicts.clone();
    let unhealthy = |id: &str| -> Option<&'static str> {
        let v = verdicts.get(id)?;
        if v.live == Some(false) {
            Some("liveness")
        } else if v.started == Some(false) {
            Some("startup")
        } else {
            None
        }
    };
    let a = actions::compute(pod, &rt, &hash, &unhealthy);
    run_actions(k, pod, &mut rt, &a).await?;
    let mut rt = runtime_state::fetch(k, &pod_uid).await?;
    crate::cleanup::gc(k, &mut rt).await?;
    status_write::sync_probes(k, pod, &rt);
    status_write::write(k, pod, &rt, false).await?;
    Ok(Next::After(next_wake(k, pod, &rt)))
}

/// When the next restart back-off of the pod ends, if sooner than the resync.
fn next_wake(k: &Kubelet, pod: &Pod, rt: &PodRuntime) -> Duration {
    let now = Timestamp::now();
    let m = k.memory();
    let spec = pod.spec.as_ref();
    let all = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
    let mut wake = RESYNC;
    for c in all {
        let Some(exited) = rt.latest(&c.name).filter(|i| i.state() == CState::Exited) else { continue };
        let Ok(finished) = Timestamp::from_nanosecond(i128::from(exited.finished_at)) else { continue };
        if let Some(left) = m.crash.remaining_since(&backoff_key(pod, c, &exited.hash), finished, now) {
            wake = wake.min(left + Duration::from_millis(100));
        }
    }
    wake
}

async fn run_actions(k: &Kubelet, pod: &Pod, rt: &mut PodRuntime, a: &Actions) -> Result<()> {
    let pod_uid = uid(pod).to_owned();
    let grace = kill::grace_period(pod);
    if a.kill_pod {
        if a.create_sandbox.is_some_and(|attempt| attempt > 0) {
            let msg = "Pod sandbox changed, it will be killed and re-created.";
            k.pod_event(pod, EventType::Normal, "SandboxChanged", msg).await;
        }
        kill::kill_pod(k, pod, rt, grace).await?;
    } else {
        for kill in &a.kill {
            kill::kill_container(k, pod, rt, &kill.id, &kill.name, kill.message.as_deref(), grace).await?;
        }
    }
    if a.next_init.is_none() && a.start.is_empty() {
        return Ok(());
    }
    let (sandbox_id, attempt) = match (a.create_sandbox, rt.sandbox()) {
        (Some(attempt), _) => (None, attempt),
        (None, Some(s)) => (Some(s.id.clone()), s.attempt),
        (None, None) => return Ok(()),
    };
    let sandbox = match crate::spec::sandbox_config_and_warnings(pod, &k.config, attempt) {
        Ok((mut c, warnings)) => {
            // Upstream reports these once per sandbox it creates.
            if a.create_sandbox.is_some() {
                for w in warnings {
                    k.pod_event(pod, EventType::Warning, w.reason, &w.message).await;
                }
            }
            for (key, v) in [
                (labels::POD_NAME, pod.metadata.name.clone()),
                (labels::POD_NAMESPACE, pod.metadata.namespace.clone()),
                (labels::POD_UID, pod.metadata.uid.clone()),
            ] {
                c.labels.insert(key.to_owned(), v.unwrap_or_default());
            }
            c
        }
        Err(e) => {
            let msg = format!("Failed to create pod sandbox: {e}");
            k.pod_event(pod, EventType::Warning, "FailedCreatePodSandBox", &msg).await;
            return Ok(());
        }
    };
    let sandbox_id = match sandbox_id {
        Some(id) => id,
        None => {
            let mut r = k.runtime.runtime.clone();
            let req = api::RunPodSandboxRequest { config: Some(sandbox.clone()), runtime_handler: "runc".into() };
            match r.run_pod_sandbox(req).await {
                Ok(resp) => {
                    *rt = runtime_state::fetch(k, &pod_uid).await?;
                    resp.into_inner().pod_sandbox_id
                }
                Err(s) => {
                    let msg = format!(
                        "Failed to create pod sandbox: rpc error: code = {:?} desc = {}",
                        s.code(),
                        s.message()
                    );
                    k.pod_event(pod, EventType::Warning, "FailedCreatePodSandBox", &msg).await;
                    return Err(rkube_cri::Error::Cri { what: "RunPodSandbox".into(), source: s }.into());
                }
            }
        }
    };
    let ips = rt.sandbox().map(|s| s.ips.clone()).unwrap_or_default();
    let hosts = crate::spec::etc_hosts(pod, &ips, &k.config);
    let path = containers::etc_hosts_path(k, &pod_uid);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(rkube_cri::Error::io(format!("creating {}", dir.display())))?;
    }
    tokio::fs::write(&path, hosts).await.map_err(rkube_cri::Error::io(format!("writing {}", path.display())))?;
    let Some(spec) = pod.spec.as_ref() else { return Ok(()) };
    let mut todo = vec![];
    if let Some(c) = a.next_init.and_then(|i| spec.init_containers.as_ref().and_then(|v| v.get(i))) {
        todo.push(c);
    }
    todo.extend(a.start.iter().filter_map(|i| spec.containers.get(*i)));
    let mut results: HashMap<String, Option<(String, String)>> = HashMap::new();
    for c in todo {
        let hash = crate::spec::container_hash(c);
        let r = containers::start(k, pod, c, rt, &sandbox_id, &sandbox, &hash).await;
        results.insert(c.name.clone(), r.err());
    }
    let mut m = k.memory();
    let reasons = m.reasons.entry(pod_uid).or_default();
    for (name, r) in results {
        match r {
            Some(e) => reasons.insert(name, e),
            None => reasons.remove(&name),
        };
    }
    Ok(())
}

/// A pod in a terminal phase: nothing runs any more, its status stays as it is.
async fn finished(k: &Kubelet, pod: &Pod, rt: &PodRuntime) -> Result<Next> {
    let pod_uid = uid(pod).to_owned();
    if rt.anything_running() {
        kill::kill_pod(k, pod, rt, kill::grace_period(pod)).await?;
    }
    k.probes.remove_pod(&pod_uid);
    let done = k.memory().finished.contains(&pod_uid);
    if !done {
        if let Err(e) = k.volumes.teardown(&pod_uid).await {
            tracing::warn!(pod_uid = %pod_uid, error = %e, "tearing down the volumes of a finished pod");
            return Ok(Next::After(Duration::from_secs(5)));
        }
        k.memory().finished.insert(pod_uid);
    }
    Ok(Next::After(RESYNC))
}

/// Terminates a pod being deleted: its containers stop (preStop, grace period), then its sandbox; its final
/// status is written, volumes torn down, and the pod object deleted for good.
pub(crate) async fn terminate(k: &Kubelet, pod: &Pod) -> Result<Next> {
    let pod_uid = uid(pod).to_owned();
    let rt = runtime_state::fetch(k, &pod_uid).await?;
    if rt.anything_running() {
        kill::kill_pod(k, pod, &rt, kill::grace_period(pod)).await?;
    }
    k.probes.remove_pod(&pod_uid);
    let rt = runtime_state::fetch(k, &pod_uid).await?;
    if !is_terminal(pod) {
        status_write::write(k, pod, &rt, true).await?;
    }
    if let Err(e) = k.volumes.teardown(&pod_uid).await {
        tracing::warn!(pod_uid = %pod_uid, error = %e, "tearing down volumes");
        return Ok(Next::After(Duration::from_secs(2)));
    }
    let api: Api<Pod> = Api::namespaced(k.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
    let name = pod.metadata.name.clone().unwrap_or_default();
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(pod_uid.clone()), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(e) if rkube_client::api::is_not_found(&e) || rkube_client::api::is_conflict(&e) => {}
        Err(e) => return Err(rkube_client::Error::api(format!("deleting pod {name}"), e).into()),
    }
    // The watch's delete event wakes the worker to remove what is left.
    Ok(Next::After(RESYNC))
}
