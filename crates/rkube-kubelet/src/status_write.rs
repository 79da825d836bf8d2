//! The status manager's write: the pod's status computed from the runtime, patched into `pods/status` only
//! when it differs from what the API shows (or what we wrote last), and the probe workers kept in step with
//! the running containers.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::Kubelet;
use crate::runtime_state::{CState, PodRuntime};
use crate::state::uid;
use crate::status::{StatusInput, pod_status};

/// Starts probe workers for running instances that have probes, and stops those of instances gone.
pub(crate) fn sync_probes(k: &Kubelet, pod: &Pod, rt: &PodRuntime) {
    let pod_uid = uid(pod);
    let spec = pod.spec.as_ref();
    let mut add = vec![];
    {
        let mut m = k.memory();
        let running: HashMap<&str, &str> = rt
            .containers
            .iter()
            .filter(|c| c.state() == CState::Running)
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let gone: Vec<String> = m
            .probing
            .iter()
            .filter(|(id, u)| u.as_str() == pod_uid && !running.contains_key(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            m.probing.remove(&id);
            m.verdicts.remove(&id);
            k.probes.remove_container(&id);
        }
        for (id, name) in running {
            let has_probes = spec.and_then(|s| s.containers.iter().find(|c| c.name == name)).is_some_and(|c| {
                c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
            });
            if has_probes && !m.probing.contains_key(id) {
                m.probing.insert(id.to_owned(), pod_uid.to_owned());
                add.push((id.to_owned(), name.to_owned()));
            }
        }
    }
    for (id, name) in add {
        k.probes.add_container(pod, crate::kill::target(k, pod, rt, &id, &name));
    }
}

/// Computes the pod's status and writes it when it changed.
pub(crate) async fn write(k: &Kubelet, pod: &Pod, rt: &PodRuntime, terminal: bool) -> crate::Result<()> {
    let pod_uid = uid(pod).to_owned();
    let (reasons, verdicts, last) = {
        let m = k.memory();
        (m.reasons.get(&pod_uid).cloned().unwrap_or_default(), m.verdicts.clone(), m.written.get(&pod_uid).cloned())
    };
    // What we wrote last is newer than a watch that has not caught up with it yet; once the watch shows our
    // write (or a later one), the API's status is the truth (another writer may have changed it).
    let revision = |p: &Pod| p.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
    let stale =
        last.as_ref().filter(|(_, rv, _)| revision(pod).is_some_and(|seen| seen < *rv)).map(|(v, _, _)| v.clone());
    let mut base = pod.clone();
    if let Some(s) = stale.clone().and_then(|v| serde_json::from_value(v).ok()) {
        base.status = Some(s);
    }
    let node_ip = k.config.node_ip.to_string();
    let qos = crate::spec::qos_class(pod);
    let input = StatusInput {
        pod: &base,
        rt,
        reasons: &reasons,
        probes: &verdicts,
        node_ip: &node_ip,
        qos,
        terminal,
        now: Timestamp::now(),
    };
    let status = pod_status(&input);
    let new = serde_json::to_value(&status).unwrap_or_default();
    let api_has = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
    // The same status again within a resync period is not rewritten, so an API server that stores it in a
    // slightly different shape cannot make write → watch event → sync → write spin.
    let recently = last.as_ref().is_some_and(|(v, _, at)| *v == new && at.elapsed() < crate::worker::RESYNC);
    if new == api_has || stale.as_ref() == Some(&new) || recently {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(k.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
    let name = pod.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"uid": pod_uid}, "status": new});
    match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(written) => {
            let rv = revision(&written).unwrap_or(0);
            tracing::debug!(pod = %name, "wrote pod status");
            k.memory().written.insert(pod_uid, (new, rv, std::time::Instant::now()));
            Ok(())
        }
        Err(e) if rkube_client::api::is_not_found(&e) => Ok(()),
        Err(e) => Err(rkube_client::Error::api(format!("updating the status of pod {name}"), e).into()),
    }
}
