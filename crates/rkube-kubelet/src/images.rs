//! Images as upstream's image manager ensures them: imagePullPolicy against ImageStatus, PullImage with the
//! pod's imagePullSecrets (dockerconfigjson/dockercfg → CRI AuthConfig), pull back-off, and upstream's
//! events and waiting reasons (`ErrImageNeverPull`, `ErrImagePull`, `ImagePullBackOff`).

use std::time::Instant;

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use rkube_client::events::EventType;
use rkube_cri::api;

use crate::Kubelet;
use crate::state::uid;

/// Why an image is not there: (waiting reason, message).
pub(crate) type ImageError = (&'static str, String);

/// The image with a default tag when it has neither tag nor digest (`busybox` → `busybox:latest`).
pub(crate) fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') { image.to_owned() } else { format!("{image}:latest") }
}

/// The registry host of an image reference, as Docker resolves it.
pub(crate) fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

fn normalize_server(server: &str) -> String {
    let s = server.trim_start_matches("https://").trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

/// Credentials for `registry` in a docker config (`{"auths": {...}}` or the legacy bare map).
pub(crate) fn auths_for(config: &serde_json::Value, registry: &str) -> Vec<api::AuthConfig> {
    let map = config.get("auths").unwrap_or(config);
    let Some(map) = map.as_object() else { return vec![] };
    let mut out = vec![];
    for (server, entry) in map {
        if normalize_server(server) != registry {
            continue;
        }
        let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let (mut username, mut password, auth) = (field("username"), field("password"), field("auth"));
        if username.is_empty()
            && !auth.is_empty()
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth.as_bytes())
            && let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':')
        {
            username = u.to_owned();
            password = p.to_owned();
        }
        out.push(api::AuthConfig {
            username,
            password,
            auth,
            server_address: server.clone(),
            identity_token: field("identitytoken"),
            registry_token: field("registrytoken"),
        });
    }
    out
}

async fn pull_credentials(k: &Kubelet, pod: &Pod, image: &str) -> Vec<api::AuthConfig> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Secret> = Api::namespaced(k.client.clone(), ns);
    let registry = registry_of(image);
    let mut out = vec![];
    for r in pod.spec.iter().flat_map(|s| s.image_pull_secrets.iter().flatten()) {
        let Ok(Some(secret)) = api.get_opt(&r.name).await else { continue };
        let data = secret.data.unwrap_or_default();
        let raw = data.get(".dockerconfigjson").or(data.get(".dockercfg"));
        if let Some(cfg) = raw.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.0).ok()) {
            out.extend(auths_for(&cfg, &registry));
        }
    }
    out
}

async fn image_ref(k: &Kubelet, image: &str) -> Result<Option<String>, tonic::Status> {
    let mut images = k.runtime.images.clone();
    let resp = images
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec { image: image.to_owned(), ..Default::default() }),
            verbose: false,
        })
        .await?;
    Ok(resp.into_inner().image.map(|i| i.id).filter(|id| !id.is_empty()))
}

/// Makes sure `container`'s image is on the node, pulling it per its pull policy; the image reference.
pub(crate) async fn ensure(
    k: &Kubelet,
    pod: &Pod,
    container: &Container,
    sandbox: &api::PodSandboxConfig,
) -> Result<String, ImageError> {
    let requested = container.image.clone().unwrap_or_default();
    let image = with_default_tag(&requested);
    let name = container.name.as_str();
    let policy = container.image_pull_policy.clone().unwrap_or_else(|| {
        if image.ends_with(":latest") && !requested.contains('@') { "Always".into() } else { "IfNotPresent".into() }
    });
    let present = match image_ref(k, &image).await {
        Ok(r) => r,
        Err(s) => {
            let msg = format!("Failed to inspect image {requested:?}: {}", s.message());
            k.container_event(pod, name, EventType::Warning, "InspectFailed", &msg).await;
            return Err(("ImageInspectError", msg));
        }
    };
    match (&present, policy.as_str()) {
        (None, "Never") => {
            let msg = format!("Container image {requested:?} is not present with pull policy of Never");
            k.container_event(pod, name, EventType::Warning, "ErrImageNeverPull", &msg).await;
            return Err(("ErrImageNeverPull", msg));
        }
        (Some(r), p) if p != "Always" => {
            let msg = format!("Container image {requested:?} already present on machine");
            k.container_event(pod, name, EventType::Normal, "Pulled", &msg).await;
            return Ok(r.clone());
        }
        _ => {}
    }
    let key = format!("{}_{}", uid(pod), requested);
    let backing_off = {
        let m = k.memory();
        m.pulls.in_backoff_since_update(&key, Timestamp::now()).then(|| m.pull_errors.get(&key).cloned())
    };
    if let Some(prev) = backing_off {
        let msg = format!("Back-off pulling image {requested:?}");
        k.container_event(pod, name, EventType::Normal, "BackOff", &msg).await;
        let full = match prev {
            Some(p) => format!("{msg}: {p}"),
            None => msg,
        };
        return Err(("ImagePullBackOff", full));
    }
    k.container_event(pod, name, EventType::Normal, "Pulling", &format!("Pulling image {requested:?}")).await;
    let started = Instant::now();
    let mut auths: Vec<Option<api::AuthConfig>> =
        pull_credentials(k, pod, &image).await.into_iter().map(Some).collect();
    if auths.is_empty() {
        auths.push(None);
    }
    let mut last_err = String::new();
    for auth in auths {
        let mut images = k.runtime.images.clone();
        let req = api::PullImageRequest {
            image: Some(api::ImageSpec { image: image.clone(), ..Default::default() }),
            auth,
            sandbox_config: Some(sandbox.clone()),
        };
        match images.pull_image(req).await {
            Ok(resp) => {
                let image_ref = resp.into_inner().image_ref;
                let took = started.elapsed();
                let size = image_size(k, &image).await;
                let msg = format!(
                    "Successfully pulled image {requested:?} in {} ({} including waiting). Image size: {size} bytes.",
                    crate::backoff::go_duration_ms(took),
                    crate::backoff::go_duration_ms(took)
                );
                k.container_event(pod, name, EventType::Normal, "Pulled", &msg).await;
                let mut m = k.memory();
                m.pull_errors.remove(&key);
                return Ok(image_ref);
            }
            // Go's error text of a gRPC status.
            Err(s) => last_err = format!("rpc error: code = {:?} desc = {}", s.code(), s.message()),
        }
    }
    let msg = format!("Failed to pull image {requested:?}: {last_err}");
    k.container_event(pod, name, EventType::Warning, "Failed", &msg).await;
    {
        let mut m = k.memory();
        let now = Timestamp::now();
        m.pulls.next(&key, now, now);
        m.pull_errors.insert(key, last_err.clone());
    }
    Err(("ErrImagePull", last_err))
}

async fn image_size(k: &Kubelet, image: &str) -> u64 {
    let mut images = k.runtime.images.clone();
    let req = api::ImageStatusRequest {
        image: Some(api::ImageSpec { image: image.to_owned(), ..Default::default() }),
        verbose: false,
    };
    images.image_status(req).await.ok().and_then(|r| r.into_inner().image).map(|i| i.size).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags_and_registries() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(with_default_tag("a/b:1"), "a/b:1");
        assert_eq!(with_default_tag("a/b@sha256:00"), "a/b@sha256:00");
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("quay.io/x/y:1"), "quay.io");
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
    }

    #[test]
    fn docker_config_auths_match_the_registry() {
        let cfg = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "quay.io": {"username": "q", "password": "p"}
        }});
        let hub = auths_for(&cfg, "docker.io");
        assert_eq!(hub.len(), 1);
        assert_eq!((hub[0].username.as_str(), hub[0].password.as_str()), ("user", "pass"));
        let quay = auths_for(&cfg, "quay.io");
        assert_eq!(quay[0].username, "q");
        assert!(auths_for(&cfg, "ghcr.io").is_empty());
    }
}
