//! Containers (regular, init, ephemeral): upstream's defaults (pull policy from the image tag, termination
//! message, port protocol, probe timings) and validation (names, image, ports, env, mounts, probes, resources,
//! security context).

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::errs::{child, duplicate, forbidden, idx, invalid_int, invalid_str, not_found, not_supported_str, required};
use crate::names::{dns1123_label, port_name, port_num};
use crate::quantity::canonicalize_list;
use crate::value::{arr, bool_at, each_mut, existing_mut, get, has, int, opt_s, s, set_default, set_default_str};

/// Options that change container validation the way upstream's `PodValidationOptions` do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opts {
    /// The object is a Pod (not a template).
    pub(crate) resource_is_pod: bool,
    /// RelaxedEnvironmentVariableValidation (on by default since 1.32).
    pub(crate) relaxed_env: bool,
    /// Whether privileged containers are allowed (kube-apiserver's `--allow-privileged`).
    pub(crate) allow_privileged: bool,
}

/// Go's `ParseImageName` reduced to what defaulting needs: the tag, "latest" when neither tag nor digest is
/// given, None when the reference does not parse (upstream then defaults to IfNotPresent).
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.trim() != image {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo_last, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    let repo = &name[..name.len() - last.len() + repo_last.len()];
    // The path after an optional registry host must be lowercase.
    let path = match repo.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => rest,
        _ => repo,
    };
    if path.is_empty() || path.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    if let Some(t) = tag
        && (t.is_empty()
            || t.len() > 128
            || !t.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')))
    {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(_)) => Some(String::new()),
        (None, None) => Some("latest".to_owned()),
    }
}

/// The pull policy upstream defaults for an image: Always for `:latest` (or no tag), else IfNotPresent.
pub(crate) fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" }
}

/// `SetDefaults_HTTPGetAction`.
fn default_http_get(handler: &mut Value) {
    if let Some(h) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_default_str(h, "path", "/");
        set_default_str(h, "scheme", "HTTP");
    }
}

/// `SetDefaults_Probe` plus the handler defaults inside it.
fn default_probe(p: &mut Value) {
    default_http_get(p);
    if let Some(g) = p.get_mut("grpc").and_then(Value::as_object_mut) {
        set_default(g, "service", json!(""));
    }
    let Some(o) = p.as_object_mut() else { return };
    for (k, d) in [("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)] {
        if o.get(k).and_then(crate::value::as_int).unwrap_or(0) == 0 {
            o.insert(k.to_owned(), json!(d));
        }
    }
}

/// `SetDefaults_Container` and the defaults of everything a container holds.
pub(crate) fn default_container(c: &mut Value) {
    let image = s(c, "image").to_owned();
    let Some(o) = c.as_object_mut() else { return };
    set_default_str(o, "imagePullPolicy", default_pull_policy(&image));
    set_default_str(o, "terminationMessagePath", "/dev/termination-log");
    set_default_str(o, "terminationMessagePolicy", "File");
    each_mut(o, "ports", |p| {
        if let Some(p) = p.as_object_mut() {
            set_default_str(p, "protocol", "TCP");
        }
    });
    each_mut(o, "env", |e| {
        if let Some(f) = e.pointer_mut("/valueFrom/fieldRef").and_then(Value::as_object_mut) {
            set_default_str(f, "apiVersion", "v1");
        }
        if let Some(r) = e.pointer_mut("/valueFrom/resourceFieldRef/divisor") {
            crate::quantity::canonicalize_value(r, false);
        }
    });
    // ResourceRequirements is a struct in v1, so it is always written (`resources: {}`).
    set_default(o, "resources", json!({}));
    if let Some(r) = o.get_mut("resources") {
        canonicalize_list(r.get_mut("limits"));
        canonicalize_list(r.get_mut("requests"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing_mut(o, probe) {
            default_probe(p);
        }
    }
    if let Some(l) = existing_mut(o, "lifecycle") {
        for h in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(h).filter(|x| x.is_object()) {
                default_http_get(h);
            }
        }
    }
}

/// Which volumes the containers may mount: name → whether the source is a PVC (or generic ephemeral) volume.
pub(crate) type VolumeSet = BTreeMap<String, bool>;

fn validate_ports(c: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in arr(c, "ports").iter().enumerate() {
        let ip = idx(f, i);
        let name = s(p, "name");
        if !name.is_empty() {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                errs.extend(msgs.iter().map(|m| invalid_str(&child(&ip, "name"), name, m)));
            } else if !names.insert(name) {
                errs.push(duplicate(&child(&ip, "name"), &json!(name)));
            }
        }
        let cp = int(p, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(required(&child(&ip, "containerPort"), ""));
        } else {
            errs.extend(port_num(cp).iter().map(|m| invalid_int(&child(&ip, "containerPort"), cp, m)));
        }
        let hp = int(p, "hostPort").unwrap_or(0);
        if hp != 0 {
            errs.extend(port_num(hp).iter().map(|m| invalid_int(&child(&ip, "hostPort"), hp, m)));
        }
        match s(p, "protocol") {
            "" => errs.push(required(&child(&ip, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(not_supported_str(&child(&ip, "protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
    }
    errs
}
/// `validateLocalDescendingPath`: relative, without `..` elements.
pub(crate) fn validate_local_descending_path(p: &str, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(invalid_str(f, p, "must be a relative path"));
    }
    errs.extend(validate_no_backsteps(p, f));
    errs
}

/// `validatePathNoBacksteps`.
pub(crate) fn validate_no_backsteps(p: &str, f: &str) -> Vec<Cause> {
    if p.split('/').any(|seg| seg == "..") { vec![invalid_str(f, p, "must not contain '..'")] } else { Vec::new() }
}

fn validate_mounts(c: &Value, vols: &VolumeSet, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut paths = BTreeSet::new();
    let devices: Vec<(&str, &str)> =
        arr(c, "volumeDevices").iter().map(|d| (s(d, "name"), s(d, "devicePath"))).collect();
    let privileged = c.pointer("/securityContext/privileged").and_then(Value::as_bool).unwrap_or(false);
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let ip = idx(f, i);
        let name = s(m, "name");
        let mount_path = s(m, "mountPath");
        if name.is_empty() {
            errs.push(required(&child(&ip, "name"), ""));
        }
        if !vols.contains_key(name) {
            errs.push(not_found(&child(&ip, "name"), name));
        }
        if mount_path.is_empty() {
            errs.push(required(&child(&ip, "mountPath"), ""));
        }
        if !paths.insert(mount_path) {
            errs.push(invalid_str(&child(&ip, "mountPath"), mount_path, "must be unique"));
        }
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(invalid_str(&child(&ip, "name"), name, "must not already exist in volumeDevices"));
        }
        if devices.iter().any(|(_, p)| *p == mount_path) {
            errs.push(invalid_str(
                &child(&ip, "mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub = s(m, "subPath");
        let sub_expr = s(m, "subPathExpr");
        // Upstream reports these two at the list's path, not the mount's.
        if !sub.is_empty() {
            errs.extend(validate_local_descending_path(sub, &child(f, "subPath")));
        }
        if !sub_expr.is_empty() {
            if !sub.is_empty() {
                errs.push(invalid_str(
                    &child(&ip, "subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(sub_expr, &child(f, "subPathExpr")));
        }
        if let Some(mp) = opt_s(m, "mountPropagation") {
            let pf = child(f, "mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&mp) {
                errs.push(not_supported_str(&pf, mp, &["Bidirectional", "HostToContainer", "None"]));
            }
            if mp == "Bidirectional" && !privileged {
                errs.push(forbidden(&pf, "Bidirectional mount propagation is available only to privileged containers"));
            }
        }
        if let Some(rro) = opt_s(m, "recursiveReadOnly") {
            let rf = child(f, "recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !bool_at(m, "readOnly") {
                        errs.push(forbidden(&rf, "may only be specified when readOnly is true"));
                    }
                    if opt_s(m, "mountPropagation").is_some_and(|p| p != "None") {
                        errs.push(forbidden(
                            &rf,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(not_supported_str(&rf, other, &["Disabled", "Enabled", "IfPossible"])),
            }
        }
    }
    let mounts: Vec<(&str, &str)> = arr(c, "volumeMounts").iter().map(|m| (s(m, "name"), s(m, "mountPath"))).collect();
    let df = format!("{}volumeDevices", &f[..f.len() - "volumeMounts".len()]);
    let mut dev_names = BTreeSet::new();
    let mut dev_paths = BTreeSet::new();
    for (i, (name, path)) in devices.iter().enumerate() {
        let ip = idx(&df, i);
        if name.is_empty() {
            errs.push(required(&child(&ip, "name"), ""));
        }
        if dev_names.contains(name) {
            errs.push(invalid_str(&child(&ip, "name"), name, "must be unique"));
        }
        match vols.get(*name) {
            Some(false) => errs.push(invalid_str(
                &child(&ip, "name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(true) => {}
            None => errs.push(not_found(&child(&ip, "name"), name)),
        }
        if path.is_empty() {
            errs.push(required(&child(&ip, "devicePath"), ""));
        }
        if dev_paths.contains(path) {
            errs.push(invalid_str(&child(&ip, "devicePath"), path, "must be unique"));
        }
        if !path.is_empty() && path.split('/').any(|s| s == "..") {
            errs.push(invalid_str(&child(&ip, "devicePath"), path, "can not contain backsteps ('..')"));
        } else {
            dev_paths.insert(*path);
        }
        if mounts.iter().any(|(n, _)| n == name) {
            errs.push(invalid_str(&child(&ip, "name"), name, "must not already exist in volumeMounts"));
        }
        if mounts.iter().any(|(_, p)| p == path) {
            errs.push(invalid_str(&child(&ip, "devicePath"), path, "must not already exist as a path in volumeMounts"));
        }
        if !name.is_empty() {
            dev_names.insert(*name);
        }
    }
    errs
}

fn validate_resize_policy(c: &Value, f: &str, pod_restart: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, p) in arr(c, "resizePolicy").iter().enumerate() {
        let rn = s(p, "resourceName");
        let rp = s(p, "restartPolicy");
        if !seen.insert(rn) {
            errs.push(duplicate(&idx(f, i), &json!(rn)));
        }
        match rn {
            "cpu" | "memory" => {}
            "" => errs.push(required(f, "")),
            other => errs.push(not_supported_str(f, other, &["cpu", "memory"])),
        }
        match rp {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(required(f, "")),
            other => errs.push(not_supported_str(f, other, &["NotRequired", "RestartContainer"])),
        }
        if pod_restart == "Never" && rp != "NotRequired" {
            errs.push(invalid_str(f, rp, "must be 'NotRequired' when `restartPolicy` is 'Never'"));
        }
    }
    errs
}

/// `validateContainerCommon`: what every kind of container must satisfy.
pub(crate) fn validate_common(
    c: &Value,
    vols: &VolumeSet,
    f: &str,
    opts: &Opts,
    pod_restart: &str,
    host_users: bool,
) -> Vec<Cause> {
    let mut errs = Vec::new();
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(required(&child(f, "name"), ""));
    } else {
        errs.extend(dns1123_label(name).iter().map(|m| invalid_str(&child(f, "name"), name, m)));
    }
    if s(c, "image").is_empty() {
        errs.push(required(&child(f, "image"), ""));
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&child(f, "terminationMessagePolicy"), "")),
        other => errs.push(not_supported_str(
            &child(f, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_ports(c, &child(f, "ports")));
    errs.extend(crate::env::validate_env(c, f, opts));
    errs.extend(validate_mounts(c, vols, &child(f, "volumeMounts")));
    match s(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(&child(f, "imagePullPolicy"), "")),
        other => {
            errs.push(not_supported_str(&child(f, "imagePullPolicy"), other, &["Always", "IfNotPresent", "Never"]))
        }
    }
    errs.extend(crate::resources::validate_requirements(get(c, "resources"), &child(f, "resources")));
    errs.extend(validate_resize_policy(c, &child(f, "resizePolicy"), pod_restart));
    errs.extend(crate::security::validate_security_context(
        get(c, "securityContext"),
        &child(f, "securityContext"),
        host_users,
        opts,
    ));
    errs
}

/// Host ports must be unique per protocol and host IP across `containers` (reported at each later duplicate).
fn host_port_conflicts(containers: &[&Value], f: &str, first_index: usize) -> Vec<Cause> {
    let mut seen = BTreeSet::new();
    let mut errs = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in arr(c, "ports").iter().enumerate() {
            let hp = int(p, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{hp}", s(p, "protocol"), s(p, "hostIP"));
            if !seen.insert(k.clone()) {
                errs.push(duplicate(
                    &child(&idx(&child(&idx(f, ci + first_index), "ports"), pi), "hostPort"),
                    &json!(k),
                ));
            }
        }
    }
    errs
}

/// `validateContainers`: the regular containers of a pod spec.
pub(crate) fn validate_containers(
    spec: &Value,
    vols: &VolumeSet,
    grace: Option<i64>,
    f: &str,
    opts: &Opts,
    host_users: bool,
) -> Vec<Cause> {
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        return vec![required(f, "")];
    }
    let restart = s(spec, "restartPolicy");
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = idx(f, i);
        errs.extend(validate_common(c, vols, &p, opts, restart, host_users));
        if !names.insert(s(c, "name")) {
            errs.push(duplicate(&child(&p, "name"), &json!(s(c, "name"))));
        }
        errs.extend(crate::probe::validate_probes_and_lifecycle(c, grace, &p));
        if has(c, "restartPolicy") {
            errs.push(forbidden(&child(&p, "restartPolicy"), "may not be set for non-init containers"));
        }
    }
    let all: Vec<&Value> = containers.iter().collect();
    errs.extend(host_port_conflicts(&all, f, 0));
    errs
}

/// `validateInitContainers`.
pub(crate) fn validate_init_containers(
    spec: &Value,
    vols: &VolumeSet,
    grace: Option<i64>,
    f: &str,
    opts: &Opts,
    host_users: bool,
) -> Vec<Cause> {
    let restart = s(spec, "restartPolicy");
    let mut names: BTreeSet<&str> = arr(spec, "containers").iter().map(|c| s(c, "name")).collect();
    let mut errs = Vec::new();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = idx(f, i);
        errs.extend(validate_common(c, vols, &p, opts, restart, host_users));
        let mut restart_always = false;
        if let Some(rp) = opt_s(c, "restartPolicy") {
            if rp != "Always" {
                errs.push(not_supported_str(&child(&p, "restartPolicy"), rp, &["Always"]));
            }
            restart_always = rp == "Always";
        }
        let name = s(c, "name");
        if names.contains(name) {
            errs.push(duplicate(&child(&p, "name"), &json!(name)));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.extend(host_port_conflicts(&[c], f, i));
        if restart_always {
            errs.extend(crate::probe::validate_probes_and_lifecycle(c, grace, &p));
        } else {
            for k in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if has(c, k) {
                    errs.push(forbidden(
                        &child(&p, k),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// Ensures a container list's items are objects with defaults applied.
pub(crate) fn default_containers(spec: &mut Map<String, Value>) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, list, default_container);
    }
}

/// Image whitespace check that upstream applies to pods only (not templates).
pub(crate) fn validate_image_whitespace(spec: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let image = s(c, "image");
            if image.trim() != image {
                errs.push(invalid_str(
                    &child(&idx(&child(f, list), i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_from_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(default_pull_policy("registry:5000/app"), "Always");
        assert_eq!(default_pull_policy("registry:5000/app:v1"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(default_pull_policy("Nginx"), "IfNotPresent");
        assert_eq!(default_pull_policy(""), "IfNotPresent");
    }

    #[test]
    fn container_defaults() {
        let mut c = json!({"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}}, "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}}});
        default_container(&mut c);
        assert_eq!(
            c,
            json!({"name": "c", "image": "busybox", "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}})
        );
    }
}
