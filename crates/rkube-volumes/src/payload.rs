//! What a configMap, secret or downwardAPI source projects: its keys (all, or the `items` chosen, each with
//! its own `path` and `mode`) as files, with upstream's defaults and error wording.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};

use crate::atomic::{FileProjection, Payload};
use crate::downward;

/// Upstream's `defaultMode` when none is given (0644).
pub(crate) const DEFAULT_MODE: i32 = 0o644;

/// The keys of a ConfigMap (`data` and `binaryData`).
pub(crate) fn configmap_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let text = cm.data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes()));
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone()));
    text.chain(binary).collect()
}

/// The keys of a Secret.
pub(crate) fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

/// Which kind of object the keys came from, for upstream's two wordings of a missing key.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// `configmap references non-existent config key: k`
    ConfigMap,
    /// `references non-existent secret key: k`
    Secret,
}

/// Files for `data`: every key, or `items` (a missing key fails unless `optional`).
pub(crate) fn key_payload(
    source: Source,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let file = |data: &Vec<u8>, mode: Option<i32>| FileProjection {
        data: data.clone(),
        mode: mode.unwrap_or(default_mode) as u32 & 0o7777,
    };
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                payload.insert(k.clone(), file(v, None));
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        payload.insert(item.path.clone(), file(v, item.mode));
                    }
                    None if optional => {}
                    None => {
                        return Err(match source {
                            Source::ConfigMap => format!("configmap references non-existent config key: {}", item.key),
                            Source::Secret => format!("references non-existent secret key: {}", item.key),
                        });
                    }
                }
            }
        }
    }
    Ok(payload)
}

/// Files for downwardAPI `items`; `allocatable` is the node's, for limits the container does not set.
pub(crate) fn downward_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    allocatable: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            downward::field_value(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            downward::resource_value(pod, r, allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                let mode = item.mode.unwrap_or(default_mode) as u32 & 0o7777;
                payload.insert(item.path.clone(), FileProjection { data: v.into_bytes(), mode });
            }
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(payload),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// Whether any downwardAPI item needs the node's allocatable (a resource limit).
pub(crate) fn needs_allocatable(items: &[DownwardAPIVolumeFile]) -> bool {
    items.iter().any(|i| i.resource_field_ref.as_ref().is_some_and(|r| r.resource.starts_with("limits.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Vec<u8>> {
        [("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())].into()
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath { key: key.into(), path: path.into(), mode }
    }

    #[test]
    fn all_keys_with_default_mode() {
        let p = key_payload(Source::ConfigMap, &data(), None, 0o400, false).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(p.values().all(|f| f.mode == 0o400));
    }

    #[test]
    fn items_choose_keys_paths_and_modes() {
        let items = [item("a", "dir/x.txt", Some(0o600)), item("b", "y", None)];
        let p = key_payload(Source::Secret, &data(), Some(&items), DEFAULT_MODE, false).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["dir/x.txt", "y"]);
        assert_eq!(p["dir/x.txt"], FileProjection { data: b"1".to_vec(), mode: 0o600 });
        assert_eq!(p["y"].mode, 0o644);
    }

    #[test]
    fn missing_keys_fail_unless_optional() {
        let items = [item("zz", "z", None), item("a", "a", None)];
        assert_eq!(
            key_payload(Source::ConfigMap, &data(), Some(&items), DEFAULT_MODE, false).unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert_eq!(
            key_payload(Source::Secret, &data(), Some(&items), DEFAULT_MODE, false).unwrap_err(),
            "references non-existent secret key: zz"
        );
        let p = key_payload(Source::Secret, &data(), Some(&items), DEFAULT_MODE, true).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a"]);
    }
}
