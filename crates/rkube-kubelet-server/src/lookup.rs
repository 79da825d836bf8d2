//! Finding a pod's sandbox and a container's instances through CRI, by the `io.kubernetes.*` labels the
//! kubelet puts on everything it creates; picking the current and the previous instance of a container.

use std::collections::HashMap;

use rkube_cri::api::{self, Container, ContainerState, PodSandbox, PodSandboxState};
use rkube_cri::labels;

use crate::failure::Failure;
use crate::state::State;

/// The pod's sandbox: the ready one if there is one, else the newest (a pod re-created under the same name,
/// or a sandbox re-created after it died, leaves older ones behind until they are removed).
pub(crate) fn pick_sandbox(mut items: Vec<PodSandbox>) -> Option<PodSandbox> {
    items.sort_by_key(|s| (s.state == PodSandboxState::SandboxReady as i32, s.created_at));
    items.pop()
}

/// How many times the container had been restarted when this instance was created.
pub(crate) fn restart_count(c: &Container) -> u32 {
    c.annotations
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| c.metadata.as_ref().map_or(0, |m| m.attempt))
}

/// The instance the pod's status shows now: the highest restart count, the newest on a tie.
pub(crate) fn current(instances: &[Container]) -> Option<&Container> {
    instances.iter().max_by_key(|c| (restart_count(c), c.created_at))
}

/// The instance upstream's `logs --previous` shows (the container status' `lastState.terminated`): while
/// the newest instance runs, the newest exited one before it; once the newest has exited too (the container
/// is backing off before its next restart), the newest itself. A container that never restarted has none.
pub(crate) fn previous(instances: &[Container]) -> Option<&Container> {
    let newest = current(instances)?;
    let now = restart_count(newest);
    if newest.state == ContainerState::ContainerExited as i32 {
        return (now > 0).then_some(newest);
    }
    instances
        .iter()
        .filter(|c| restart_count(c) < now && c.state == ContainerState::ContainerExited as i32)
        .max_by_key(|c| (restart_count(c), c.created_at))
}

/// The sandbox of pod `ns/pod`, or 404.
pub(crate) async fn sandbox(st: &State, ns: &str, pod: &str) -> Result<PodSandbox, Failure> {
    let selector = HashMap::from([
        (labels::POD_NAMESPACE.to_owned(), ns.to_owned()),
        (labels::POD_NAME.to_owned(), pod.to_owned()),
    ]);
    let req = api::ListPodSandboxRequest {
        filter: Some(api::PodSandboxFilter { label_selector: selector, ..Default::default() }),
    };
    let mut client = st.runtime.runtime.clone();
    let items = st
        .metrics
        .runtime_op("list_podsandbox", client.list_pod_sandbox(req))
        .await
        .map_err(|e| Failure::runtime("listing pod sandboxes", &e))?
        .into_inner()
        .items;
    pick_sandbox(items).ok_or_else(|| Failure::not_found(format!("pod \"{pod}\" does not exist")))
}

/// Every instance of container `name` of the pod that owns `sandbox` (same pod UID, any sandbox).
pub(crate) async fn instances(st: &State, sandbox: &PodSandbox, name: &str) -> Result<Vec<Container>, Failure> {
    let mut selector = HashMap::from([(labels::CONTAINER_NAME.to_owned(), name.to_owned())]);
    for key in [labels::POD_NAMESPACE, labels::POD_NAME, labels::POD_UID] {
        if let Some(v) = sandbox.labels.get(key) {
            selector.insert(key.to_owned(), v.clone());
        }
    }
    let req = api::ListContainersRequest {
        filter: Some(api::ContainerFilter { label_selector: selector, ..Default::default() }),
    };
    let mut client = st.runtime.runtime.clone();
    Ok(st
        .metrics
        .runtime_op("list_containers", client.list_containers(req))
        .await
        .map_err(|e| Failure::runtime("listing containers", &e))?
        .into_inner()
        .containers)
}

/// The current instance of container `name` in pod `ns/pod`, with 404s and upstream's "waiting" answer.
pub(crate) async fn container(st: &State, ns: &str, pod: &str, name: &str) -> Result<(PodSandbox, Container), Failure> {
    let sb = sandbox(st, ns, pod).await?;
    let all = instances(st, &sb, name).await?;
    match current(&all) {
        Some(c) => Ok((sb.clone(), c.clone())),
        None => Err(Failure::bad_request(format!(
            "container \"{name}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, restarts: u32, created: i64, state: ContainerState) -> Container {
        Container {
            id: id.into(),
            created_at: created,
            state: state as i32,
            annotations: HashMap::from([(labels::RESTART_COUNT.to_owned(), restarts.to_string())]),
            ..Default::default()
        }
    }

    fn sb(id: &str, ready: bool, created: i64) -> PodSandbox {
        let state = if ready { PodSandboxState::SandboxReady } else { PodSandboxState::SandboxNotready };
        PodSandbox { id: id.into(), state: state as i32, created_at: created, ..Default::default() }
    }

    #[test]
    fn current_and_previous_by_restart_count() {
        let all = vec![
            c("a", 0, 10, ContainerState::ContainerExited),
            c("b", 1, 20, ContainerState::ContainerExited),
            c("c", 2, 30, ContainerState::ContainerRunning),
        ];
        assert_eq!(current(&all).map(|c| c.id.as_str()), Some("c"));
        assert_eq!(previous(&all).map(|c| c.id.as_str()), Some("b"));
        // Backing off after the newest instance exited: that instance is the last terminated one.
        let looping =
            vec![c("a", 0, 10, ContainerState::ContainerExited), c("b", 1, 20, ContainerState::ContainerExited)];
        assert_eq!(previous(&looping).map(|c| c.id.as_str()), Some("b"));
        // The older instances may have been removed already.
        assert_eq!(previous(&looping[1..]).map(|c| c.id.as_str()), Some("b"));
        // A container that never restarted has no previous instance, running or not.
        assert!(previous(&all[..1]).is_none());
        assert!(previous(&[c("x", 0, 1, ContainerState::ContainerRunning)]).is_none());
        assert!(current(&[]).is_none());
    }

    #[test]
    fn restart_count_falls_back_to_the_attempt() {
        let mut x = c("x", 0, 1, ContainerState::ContainerRunning);
        x.annotations.clear();
        x.metadata = Some(api::ContainerMetadata { name: "x".into(), attempt: 4 });
        assert_eq!(restart_count(&x), 4);
    }

    #[test]
    fn ready_sandbox_wins_then_newest() {
        let picked = pick_sandbox(vec![sb("old-ready", true, 1), sb("new-dead", false, 2)]).expect("one");
        assert_eq!(picked.id, "old-ready");
        let picked = pick_sandbox(vec![sb("a", false, 1), sb("b", false, 2)]).expect("one");
        assert_eq!(picked.id, "b");
        assert!(pick_sandbox(vec![]).is_none());
    }
}
