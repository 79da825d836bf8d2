//! Starting one container as upstream's `startContainer` (with `doBackOff` before it): CrashLoopBackOff,
//! the image, the restart count, the kubelet's own mounts (etc-hosts, termination log), CreateContainer and
//! StartContainer with their events, and the postStart hook. Failures come back as (waiting reason, message).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use rkube_client::events::EventType;
use rkube_cri::{api, labels};

use crate::Kubelet;
use crate::backoff::go_duration;
use crate::runtime_state::{CState, PodRuntime};
use crate::state::{format_pod, uid};

/// Why a container is not running yet: its waiting reason and message.
pub(crate) type StartError = (String, String);

fn fail(reason: &str, message: impl Into<String>) -> StartError {
    (reason.to_owned(), message.into())
}

/// The CrashLoopBackOff key of a container (upstream's stable key, led by the UID so a pod's keys go together).
pub(crate) fn backoff_key(pod: &Pod, container: &Container, hash: &str) -> String {
    format!("{}_{}_{}", uid(pod), container.name, hash)
}

/// The pod's etc-hosts file.
pub(crate) fn etc_hosts_path(k: &Kubelet, pod_uid: &str) -> PathBuf {
    k.config.root_dir.join("pods").join(pod_uid).join("etc-hosts")
}

/// The next restart count: one more than the newest instance's, else one more than the newest log file
/// (instances may have been removed), else 0.
async fn restart_count(k: &Kubelet, pod: &Pod, container: &Container, rt: &PodRuntime) -> i32 {
    if let Some(latest) = rt.latest(&container.name) {
        return latest.restart_count + 1;
    }
    let dir = k
        .config
        .pod_logs_dir
        .join(format!(
            "{}_{}_{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            uid(pod)
        ))
        .join(&container.name);
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else { return 0 };
    let mut max: Option<i32> = None;
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_suffix(".log").and_then(|n| n.parse::<i32>().ok()) {
            max = Some(max.map_or(n, |m| m.max(n)));
        }
    }
    max.map_or(0, |m| m + 1)
}

async fn termination_log(k: &Kubelet, pod: &Pod, container: &Container) -> Result<Option<api::Mount>, StartError> {
    let Some(path) = container.termination_message_path.clone().filter(|p| !p.is_empty()) else { return Ok(None) };
    let dir = k.config.root_dir.join("pods").join(uid(pod)).join("containers").join(&container.name);
    let file = dir.join(format!("{:x}", Timestamp::now().as_nanosecond()));
    let made = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&file, b"").await
    };
    if let Err(e) = made.await {
        return Err(fail("CreateContainerConfigError", format!("create termination log file {}: {e}", file.display())));
    }
    Ok(Some(mount(&file, &path)))
}

fn mount(host: &Path, container: &str) -> api::Mount {
    api::Mount { host_path: host.display().to_string(), container_path: container.to_owned(), ..Default::default() }
}

/// Starts `container` (init or regular) in the pod's sandbox; records the reason of a failure for its status.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    k: &Kubelet,
    pod: &Pod,
    container: &Container,
    rt: &PodRuntime,
    sandbox_id: &str,
    sandbox: &api::PodSandboxConfig,
    hash: &str,
) -> Result<(), StartError> {
    let name = container.name.as_str();
    // doBackOff: the newest exited instance's finish time starts the back-off.
    if let Some(exited) = rt.latest(name).filter(|c| c.state() == CState::Exited) {
        let key = backoff_key(pod, container, hash);
        let finished = Timestamp::from_nanosecond(i128::from(exited.finished_at)).unwrap_or_else(|_| Timestamp::now());
        let now = Timestamp::now();
        let backing_off = {
            let mut m = k.memory();
            if m.crash.in_backoff_since(&key, finished, now) {
                Some(go_duration(m.crash.get(&key)))
            } else {
                m.crash.next(&key, finished, now);
                None
            }
        };
        if let Some(delay) = backing_off {
            let event = format!("Back-off restarting failed container {name} in pod {}", format_pod(pod));
            k.container_event(pod, name, EventType::Warning, "BackOff", &event).await;
            let msg = format!("back-off {delay} restarting failed container={name} pod={}", format_pod(pod));
            return Err(fail("CrashLoopBackOff", msg));
        }
    }
    let image_ref = crate::images::ensure(k, pod, container, sandbox).await.map_err(|(r, m)| (r.to_owned(), m));
    let image_ref = match image_ref {
        Ok(r) => r,
        Err(e) => {
            k.container_event(pod, name, EventType::Warning, "Failed", &format!("Error: {}", e.0)).await;
            return Err(e);
        }
    };
    let restart_count = restart_count(k, pod, container, rt).await;
    let config_error = |msg: String| async move {
        k.container_event(pod, name, EventType::Warning, "Failed", &format!("Error: {msg}")).await;
        fail("CreateContainerConfigError", msg)
    };
    let mut mounts = match k.volumes.mounts(pod, container) {
        Ok(m) => m,
        Err(e) => return Err(config_error(e.to_string()).await),
    };
    let own_hosts = container.volume_mounts.iter().flatten().any(|m| m.mount_path == "/etc/hosts");
    let hosts = etc_hosts_path(k, uid(pod));
    if !own_hosts && tokio::fs::try_exists(&hosts).await.unwrap_or(false) {
        mounts.push(mount(&hosts, "/etc/hosts"));
    }
    match termination_log(k, pod, container).await {
        Ok(Some(m)) => mounts.push(m),
        Ok(None) => {}
        Err(e) => return Err(config_error(e.1).await),
    }
    let pod_ips = rt.sandbox().map(|s| s.ips.clone()).unwrap_or_default();
    let image = image_status(k, &image_ref).await;
    let ctx = crate::spec::ContainerContext {
        pod,
        container,
        restart_count,
        pod_ips: &pod_ips,
        mounts,
        image_ref: &image_ref,
        image: image.as_ref(),
        node: &k.node,
    };
    let mut config = match crate::spec::container_config_and_warnings(&ctx, &k.config, &k.client).await {
        Ok((c, warnings)) => {
            for w in warnings {
                k.pod_event(pod, EventType::Warning, w.reason, &w.message).await;
            }
            c
        }
        Err(e) => return Err(config_error(e.to_string()).await),
    };
    own_labels(&mut config, pod, container, restart_count, hash);
    let mut r = k.runtime.runtime.clone();
    let created = r
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        })
        .await;
    let id = match created {
        Ok(c) => c.into_inner().container_id,
        Err(s) => {
            k.container_event(pod, name, EventType::Warning, "Failed", &format!("Error: {}", s.message())).await;
            return Err(fail("CreateContainerError", s.message()));
        }
    };
    k.container_event(pod, name, EventType::Normal, "Created", &format!("Created container: {name}")).await;
    if let Err(s) = r.start_container(api::StartContainerRequest { container_id: id.clone() }).await {
        k.container_event(pod, name, EventType::Warning, "Failed", &format!("Error: {}", s.message())).await;
        return Err(fail("RunContainerError", s.message()));
    }
    k.container_event(pod, name, EventType::Normal, "Started", &format!("Started container {name}")).await;
    if let Some(post_start) = container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
        let target = crate::kill::target(k, pod, rt, &id, name);
        if let Err(msg) = rkube_probes::run_handler(post_start, pod, &target).await {
            // Upstream keeps the hook's output out of the event (it may hold secrets).
            k.container_event(pod, name, EventType::Warning, "FailedPostStartHook", "PostStartHook failed").await;
            let grace = crate::kill::grace_period(pod);
            let mut now = rt.clone();
            now.containers.retain(|c| c.id != id);
            if let Err(e) =
                crate::kill::kill_container(k, pod, &now, &id, name, Some("FailedPostStartHook"), grace).await
            {
                tracing::warn!(container = %name, error = %e, "killing a container whose postStart hook failed");
            }
            return Err(fail("PostStartHookError", msg));
        }
    }
    Ok(())
}

async fn image_status(k: &Kubelet, image_ref: &str) -> Option<api::Image> {
    let mut images = k.runtime.images.clone();
    let req = api::ImageStatusRequest {
        image: Some(api::ImageSpec { image: image_ref.to_owned(), ..Default::default() }),
        verbose: false,
    };
    images.image_status(req).await.ok().and_then(|r| r.into_inner().image)
}

/// The labels and annotations the kubelet itself relies on (adoption, restart counts, spec changes,
/// termination messages), whatever the spec module put there.
fn own_labels(config: &mut api::ContainerConfig, pod: &Pod, container: &Container, restart_count: i32, hash: &str) {
    let meta = &pod.metadata;
    let l = &mut config.labels;
    l.insert(labels::POD_NAME.into(), meta.name.clone().unwrap_or_default());
    l.insert(labels::POD_NAMESPACE.into(), meta.namespace.clone().unwrap_or_default());
    l.insert(labels::POD_UID.into(), meta.uid.clone().unwrap_or_default());
    l.insert(labels::CONTAINER_NAME.into(), container.name.clone());
    let a = &mut config.annotations;
    a.insert(labels::RESTART_COUNT.into(), restart_count.to_string());
    a.insert(labels::CONTAINER_HASH.into(), hash.to_owned());
    a.insert(labels::TERMINATION_MESSAGE_PATH.into(), container.termination_message_path.clone().unwrap_or_default());
    a.insert(
        labels::TERMINATION_MESSAGE_POLICY.into(),
        container.termination_message_policy.clone().unwrap_or_else(|| "File".into()),
    );
    a.insert(labels::TERMINATION_GRACE_PERIOD.into(), crate::kill::grace_period(pod).to_string());
    let md = config.metadata.get_or_insert_with(Default::default);
    md.name = container.name.clone();
    md.attempt = u32::try_from(restart_count).unwrap_or(0);
}
