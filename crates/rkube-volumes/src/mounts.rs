//! A container's CRI mounts from its `volumeMounts` (pkg/kubelet/kubelet_pods.go `makeMounts`): the volume's
//! host path, `subPath`/`subPathExpr` resolved inside it (never escaping it, through `..` or symlinks),
//! read-only for the always-read-only kinds, and `mountPropagation`.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};
use rkube_cri::api::{Mount, MountPropagation};

use crate::downward;

/// A set-up volume as containers see it.
#[derive(Debug, Clone)]
pub(crate) struct VolumePath {
    /// Where it is on the host.
    pub(crate) path: PathBuf,
    /// Always mounted read-only (configMap, secret, downwardAPI, projected, a read-only claim).
    pub(crate) read_only: bool,
}

/// The mounts of `container`; `volumes` by volume name, `extra_env` overrides what the spec alone gives.
pub(crate) fn container_mounts(
    pod: &Pod,
    container: &Container,
    volumes: &HashMap<String, VolumePath>,
    extra_env: &HashMap<String, String>,
) -> Result<Vec<Mount>, String> {
    let mut env = None;
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let vol = volumes
            .get(&m.name)
            .ok_or_else(|| format!("cannot find volume {:?} to mount into container {:?}", m.name, container.name))?;
        let mut sub = m.sub_path.clone().unwrap_or_default();
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            let env = env.get_or_insert_with(|| container_env(pod, container, extra_env));
            sub = expand(expr, env)?;
        }
        let host = if sub.is_empty() { vol.path.clone() } else { sub_path(&vol.path, &sub, m, &container.name)? };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false) || vol.read_only,
            propagation: propagation(m, container)? as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

fn propagation(m: &VolumeMount, container: &Container) -> Result<MountPropagation, String> {
    let privileged = container.security_context.as_ref().and_then(|s| s.privileged).unwrap_or(false);
    match m.mount_propagation.as_deref() {
        None | Some("None") => Ok(MountPropagation::PropagationPrivate),
        Some("HostToContainer") => Ok(MountPropagation::PropagationHostToContainer),
        Some("Bidirectional") if privileged => Ok(MountPropagation::PropagationBidirectional),
        Some("Bidirectional") => {
            Err("Bidirectional mount propagation is available only to privileged containers".into())
        }
        Some(other) => Err(format!("invalid MountPropagation mode: {other:?}")),
    }
}

/// `volume/sub`, created (with the volume's mode) when missing, refused when it leaves the volume.
pub(crate) fn sub_path(volume: &Path, sub: &str, m: &VolumeMount, container: &str) -> Result<PathBuf, String> {
    if sub.starts_with('/') {
        return Err(format!("error SubPath `{sub}` must not be an absolute path"));
    }
    if Path::new(sub).components().any(|c| c == Component::ParentDir) {
        return Err(format!("unable to provision SubPath `{sub}`: must not contain '..'"));
    }
    let base = volume.canonicalize().map_err(|e| format!("error resolving volume path {}: {e}", volume.display()))?;
    let not_within = || format!("subpath {:?} not within volume path {:?}", volume.join(sub), volume);
    let wanted = volume.join(sub);
    if std::fs::symlink_metadata(&wanted).is_err() {
        // Walk down creating what is missing; each existing step must still resolve inside the volume.
        let mode = std::fs::metadata(&base).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o755);
        let mut cur = base.clone();
        for part in Path::new(sub).components().filter(|c| matches!(c, Component::Normal(_))) {
            let next = cur.join(part);
            if std::fs::symlink_metadata(&next).is_err() {
                std::fs::create_dir(&next)
                    .and_then(|()| std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode)))
                    .map_err(|e| {
                        tracing::warn!(path = %next.display(), error = %e, "creating subPath directory");
                        format!(
                            "failed to create subPath directory for volumeMount {:?} of container {container:?}",
                            m.name
                        )
                    })?;
            }
            cur = next.canonicalize().map_err(|e| format!("error resolving subpath {}: {e}", next.display()))?;
            if !cur.starts_with(&base) {
                return Err(not_within());
            }
        }
    }
    let resolved = wanted.canonicalize().map_err(|e| format!("error resolving subpath {}: {e}", wanted.display()))?;
    if !resolved.starts_with(&base) {
        return Err(not_within());
    }
    Ok(resolved)
}

/// The container's environment as far as the spec alone tells it (literal values, fieldRef,
/// resourceFieldRef), overridden by `extra`.
fn container_env(pod: &Pod, container: &Container, extra: &HashMap<String, String>) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for e in container.env.iter().flatten() {
        let src = e.value_from.as_ref();
        let v = if let Some(f) = src.and_then(|s| s.field_ref.as_ref()) {
            downward::field_value(pod, &f.field_path).ok()
        } else if let Some(r) = src.and_then(|s| s.resource_field_ref.as_ref()) {
            let mut r = r.clone();
            r.container_name.get_or_insert_with(|| container.name.clone());
            downward::resource_value(pod, &r, None).ok()
        } else if src.is_none() {
            Some(expand_lenient(e.value.as_deref().unwrap_or_default(), &env))
        } else {
            None
        };
        if let Some(v) = v {
            env.insert(e.name.clone(), v);
        }
    }
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Upstream's `$(VAR)` syntax: `$$` is a literal `$`, an unknown or unclosed reference stays as written.
fn expand_with(s: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn expand_lenient(s: &str, env: &HashMap<String, String>) -> String {
    expand_with(s, |k| env.get(k).cloned())
}

/// `subPathExpr` expansion: every referenced variable must have a non-empty value (upstream's
/// `missing value for A, B`).
fn expand(expr: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut missing = BTreeSet::new();
    let out = expand_with(expr, |k| match env.get(k).filter(|v| !v.is_empty()) {
        Some(v) => Some(v.clone()),
        None => {
            missing.insert(k.to_owned());
            Some(String::new())
        }
    });
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!("missing value for {}", missing.into_iter().collect::<Vec<_>>().join(", ")))
    }
}

#[cfg(test)]
mod tests;
