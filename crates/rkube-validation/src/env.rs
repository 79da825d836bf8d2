//! Container environment: `env` names and `valueFrom` sources, `envFrom`, and the downward-API field and
//! resource selectors they share with downward-API volumes.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::container::Opts;
use crate::errs::{child, idx, invalid_str, not_supported_str, required};
use crate::names::{config_map_key, dns1123_subdomain, env_var_name, relaxed_env_var_name};
use crate::value::{arr, get, s};

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `validateObjectFieldSelector` for env vars and downward API files.
pub(crate) fn validate_field_ref(fr: &Value, allowed: &[&str], f: &str) -> Vec<Cause> {
    if s(fr, "apiVersion").is_empty() {
        return vec![required(&child(f, "apiVersion"), "")];
    }
    let path = s(fr, "fieldPath");
    if path.is_empty() {
        return vec![required(&child(f, "fieldPath"), "")];
    }
    if s(fr, "apiVersion") != "v1" {
        return vec![invalid_str(
            &child(f, "fieldPath"),
            path,
            &format!("error converting fieldPath: unsupported pod version: {}", s(fr, "apiVersion")),
        )];
    }
    if let Some(open) = path.find('[')
        && path.ends_with(']')
    {
        let (base, sub) = (&path[..open], &path[open + 1..path.len() - 1]);
        let sub = sub.trim_matches('\'');
        return match base {
            "metadata.annotations" => crate::names::qualified_name(&sub.to_lowercase())
                .iter()
                .map(|m| invalid_str(f, &sub.to_lowercase(), m))
                .collect(),
            "metadata.labels" => crate::names::qualified_name(sub).iter().map(|m| invalid_str(f, sub, m)).collect(),
            _ => vec![invalid_str(f, base, "does not support subscript")],
        };
    }
    if allowed.contains(&path) { Vec::new() } else { vec![not_supported_str(&child(f, "fieldPath"), path, allowed)] }
}

/// `validateContainerResourceFieldSelector`.
pub(crate) fn validate_resource_field_ref(r: &Value, f: &str, volume: bool) -> Vec<Cause> {
    let resource = s(r, "resource");
    if volume && s(r, "containerName").is_empty() {
        return vec![required(&child(f, "containerName"), "")];
    }
    if resource.is_empty() {
        return vec![required(&child(f, "resource"), "")];
    }
    if RESOURCE_FIELD_PATHS.contains(&resource)
        || resource.starts_with("requests.hugepages-")
        || resource.starts_with("limits.hugepages-")
    {
        Vec::new()
    } else {
        vec![not_supported_str(&child(f, "resource"), resource, RESOURCE_FIELD_PATHS)]
    }
}

fn validate_key_selector(sel: &Value, f: &str) -> Vec<Cause> {
    let name = s(sel, "name");
    let mut errs: Vec<Cause> =
        dns1123_subdomain(name).iter().map(|m| invalid_str(&child(f, "name"), name, m)).collect();
    let k = s(sel, "key");
    if k.is_empty() {
        errs.push(required(&child(f, "key"), ""));
    } else {
        errs.extend(config_map_key(k).iter().map(|m| invalid_str(&child(f, "key"), k, m)));
    }
    errs
}

fn env_name_errors(name: &str, opts: &Opts) -> Vec<String> {
    if opts.relaxed_env { relaxed_env_var_name(name) } else { env_var_name(name) }
}

pub(crate) fn validate_env(c: &Value, cf: &str, opts: &Opts) -> Vec<Cause> {
    let mut errs = Vec::new();
    let f = &child(cf, "env");
    let from_list = child(cf, "envFrom");
    for (i, e) in arr(c, "env").iter().enumerate() {
        let ip = idx(f, i);
        let name = s(e, "name");
        if name.is_empty() {
            errs.push(required(&child(&ip, "name"), ""));
        } else {
            errs.extend(env_name_errors(name, opts).iter().map(|m| invalid_str(&child(&ip, "name"), name, m)));
        }
        let Some(from) = get(e, "valueFrom") else { continue };
        let vp = child(&ip, "valueFrom");
        let mut n = 0;
        if let Some(fr) = get(from, "fieldRef") {
            n += 1;
            errs.extend(validate_field_ref(fr, ENV_FIELD_PATHS, &child(&vp, "fieldRef")));
        }
        if let Some(r) = get(from, "resourceFieldRef") {
            n += 1;
            errs.extend(validate_resource_field_ref(r, &child(&vp, "resourceFieldRef"), false));
        }
        if let Some(k) = get(from, "configMapKeyRef") {
            n += 1;
            errs.extend(validate_key_selector(k, &child(&vp, "configMapKeyRef")));
        }
        if let Some(k) = get(from, "secretKeyRef") {
            n += 1;
            errs.extend(validate_key_selector(k, &child(&vp, "secretKeyRef")));
        }
        if n == 0 {
            errs.push(invalid_str(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(e, "value").is_empty() {
            errs.push(invalid_str(&vp, "", "may not be specified when `value` is not empty"));
        } else if n > 1 {
            errs.push(invalid_str(&vp, "", "may not have more than one field specified at a time"));
        }
    }
    for (i, e) in arr(c, "envFrom").iter().enumerate() {
        let ip = idx(&from_list, i);
        let prefix = s(e, "prefix");
        if !prefix.is_empty() {
            errs.extend(env_name_errors(prefix, opts).iter().map(|m| invalid_str(&child(&ip, "prefix"), prefix, m)));
        }
        let mut n = 0;
        for src in ["configMapRef", "secretRef"] {
            if let Some(r) = get(e, src) {
                n += 1;
                let name = s(r, "name");
                let np = child(&child(&ip, src), "name");
                if name.is_empty() {
                    errs.push(required(&np, ""));
                } else {
                    // Upstream checks these names as generateName prefixes (a trailing '-' is allowed).
                    let masked = if name.len() > 1 && name.ends_with('-') {
                        format!("{}a", &name[..name.len() - 1])
                    } else {
                        name.to_owned()
                    };
                    errs.extend(dns1123_subdomain(&masked).iter().map(|m| invalid_str(&np, name, m)));
                }
            }
        }
        if n == 0 {
            errs.push(invalid_str(&from_list, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if n > 1 {
            errs.push(invalid_str(&from_list, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}
