//! `PodSpec` and `PodTemplateSpec`, shared by pods and every workload: upstream's `SetDefaults_PodSpec`
//! (and everything below it) and `ValidatePodSpec` / `ValidatePodTemplateSpec`.

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::container::{Opts, default_containers, validate_containers, validate_init_containers};
use crate::errs::{
    child, duplicate, forbidden, idx, invalid, invalid_int, invalid_raw, invalid_str, json_text, not_supported_str,
    required,
};
use crate::names::{dns1123_label, dns1123_subdomain, inclusive_range_error, qualified_name, unix_id};
use crate::security::{validate_apparmor, validate_seccomp_field};
use crate::selector::validate_labels;
use crate::value::{arr, bool_at, each_mut, get, int, opt_s, s, set_default, set_default_str, str_list};

/// `SetDefaults_PodSpec` and the generated defaults for what a pod spec holds (volumes, containers, probes,
/// resources); also the v1 conversion that keeps `serviceAccount` equal to `serviceAccountName`.
pub(crate) fn default_pod_spec(spec: &mut Value) {
    let Some(o) = spec.as_object_mut() else { return };
    set_default_str(o, "dnsPolicy", "ClusterFirst");
    set_default_str(o, "restartPolicy", "Always");
    set_default(o, "securityContext", json!({}));
    set_default(o, "terminationGracePeriodSeconds", json!(30));
    set_default_str(o, "schedulerName", "default-scheduler");
    // v1 → internal takes the deprecated field when the new one is empty; internal → v1 writes both.
    let sa =
        match (o.get("serviceAccountName").and_then(Value::as_str), o.get("serviceAccount").and_then(Value::as_str)) {
            (Some(n), _) if !n.is_empty() => Some(n.to_owned()),
            (_, Some(d)) if !d.is_empty() => Some(d.to_owned()),
            _ => None,
        };
    if let Some(sa) = sa {
        o.insert("serviceAccountName".into(), json!(sa));
        o.insert("serviceAccount".into(), json!(sa));
    }
    each_mut(o, "volumes", crate::volume::default_volume);
    default_containers(o);
    crate::quantity::canonicalize_list(o.get_mut("overhead"));
    if let Some(r) = o.get_mut("resources") {
        crate::quantity::canonicalize_list(r.get_mut("limits"));
        crate::quantity::canonicalize_list(r.get_mut("requests"));
    }
}

/// `SetDefaults_PodTemplateSpec` equivalent: the template's pod spec gets the PodSpec defaults.
pub(crate) fn default_template(template: Option<&mut Value>) {
    if let Some(t) = template.filter(|t| t.is_object())
        && let Some(spec) = crate::value::child_mut(t, "spec")
    {
        let mut v = Value::Object(std::mem::take(spec));
        default_pod_spec(&mut v);
        if let Value::Object(m) = v {
            *spec = m;
        }
    }
}

fn validate_pod_security_context(spec: &Value, f: &str) -> Vec<Cause> {
    let Some(sc) = get(spec, "securityContext") else { return Vec::new() };
    let mut errs = Vec::new();
    for k in ["fsGroup", "runAsUser", "runAsGroup"] {
        if let Some(id) = int(sc, k) {
            errs.extend(unix_id(id).iter().map(|m| invalid_int(&child(f, k), id, m)));
        }
    }
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        if let Some(id) = crate::value::as_int(g) {
            errs.extend(unix_id(id).iter().map(|m| invalid_int(&idx(&child(f, "supplementalGroups"), i), id, m)));
        }
    }
    if sc.get("shareProcessNamespace").and_then(Value::as_bool) == Some(true) && bool_at(spec, "hostPID") {
        errs.push(invalid(
            &child(f, "shareProcessNamespace"),
            &json!(true),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, sysctl) in arr(sc, "sysctls").iter().enumerate() {
        let np = child(&idx(&child(f, "sysctls"), i), "name");
        let name = s(sysctl, "name");
        if name.is_empty() {
            errs.push(required(&np, ""));
        } else if !valid_sysctl_name(name) {
            errs.push(invalid_str(
                &np,
                name,
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if seen.contains(name) {
            errs.push(duplicate(&np, &json!(name)));
        }
        if bool_at(spec, "hostNetwork") && name.starts_with("net.") {
            errs.push(invalid_str(&np, name, "may not be specified when 'hostNetwork' is true"));
        }
        if bool_at(spec, "hostIPC")
            && (name.starts_with("kernel.shm")
                || name.starts_with("kernel.msg")
                || name.starts_with("kernel.sem")
                || name.starts_with("fs.mqueue."))
        {
            errs.push(invalid_str(&np, name, "may not be specified when 'hostIPC' is true"));
        }
        seen.insert(name);
    }
    if let Some(p) = opt_s(sc, "fsGroupChangePolicy")
        && p != "Always"
        && p != "OnRootMismatch"
    {
        errs.push(not_supported_str(&child(f, "fsGroupChangePolicy"), p, &["Always", "OnRootMismatch"]));
    }
    errs.extend(validate_seccomp_field(get(sc, "seccompProfile"), &child(f, "seccompProfile")));
    errs.extend(validate_apparmor(get(sc, "appArmorProfile"), &child(f, "appArmorProfile")));
    if let Some(p) = opt_s(sc, "supplementalGroupsPolicy")
        && p != "Merge"
        && p != "Strict"
    {
        errs.push(not_supported_str(&child(f, "supplementalGroupsPolicy"), p, &["Merge", "Strict"]));
    }
    if let Some(p) = opt_s(sc, "seLinuxChangePolicy")
        && p != "MountOption"
        && p != "Recursive"
    {
        errs.push(not_supported_str(&child(f, "seLinuxChangePolicy"), p, &["MountOption", "Recursive"]));
    }
    errs
}

fn valid_sysctl_name(name: &str) -> bool {
    let seg_ok = |seg: &str| {
        let b = seg.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
    };
    name.len() <= 253 && name.split(['.', '/']).all(seg_ok)
}

fn validate_dns_config(spec: &Value, f: &str) -> Vec<Cause> {
    let policy = s(spec, "dnsPolicy");
    let cfg = get(spec, "dnsConfig");
    if policy == "None" {
        match cfg {
            None => return vec![required(f, "must provide `dnsConfig` when `dnsPolicy` is None")],
            Some(c) if arr(c, "nameservers").is_empty() => {
                return vec![required(
                    &child(f, "nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )];
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else { return Vec::new() };
    let mut errs = Vec::new();
    let ns = str_list(cfg, "nameservers");
    if ns.len() > 3 {
        errs.push(invalid_raw(
            &child(f, "nameservers"),
            &crate::errs::go_strings(&ns),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        errs.extend(crate::ip::validate_ip(&idx(&child(f, "nameservers"), i), n));
    }
    let searches = str_list(cfg, "searches");
    if searches.len() > 32 {
        errs.push(invalid_raw(
            &child(f, "searches"),
            &crate::errs::go_strings(&searches),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid_raw(
            &child(f, "searches"),
            &crate::errs::go_strings(&searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        // RelaxedDNSSearchValidation (beta, on in 1.33): "." is allowed and underscores are tolerated.
        if *search == "." {
            continue;
        }
        let trimmed = search.strip_suffix('.').unwrap_or(search);
        let relaxed = trimmed.replace('_', "a");
        if !dns1123_subdomain(&relaxed).is_empty() {
            errs.push(invalid_str(
                &idx(&child(f, "searches"), i),
                trimmed,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')",
            ));
        }
    }
    for (i, o) in arr(cfg, "options").iter().enumerate() {
        if s(o, "name").is_empty() {
            errs.push(required(&idx(&child(f, "options"), i), "must not be empty"));
        }
    }
    errs
}

/// `ValidatePodSpec`: `pod_name` is given for real pods (generic ephemeral volume names depend on it).
pub(crate) fn validate_pod_spec(spec: &Value, pod_name: Option<&str>, f: &str, opts: &Opts) -> Vec<Cause> {
    let mut errs = Vec::new();
    let grace = int(spec, "terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(required(&child(f, "terminationGracePeriodSeconds"), ""));
    }
    let host_users = spec.pointer("/securityContext/hostUsers").and_then(Value::as_bool).unwrap_or(true);
    let (vols, verrs) = crate::volume::validate_volumes(spec, pod_name, &child(f, "volumes"));
    errs.extend(verrs);
    let mut claim_names = BTreeSet::new();
    for (i, c) in arr(spec, "resourceClaims").iter().enumerate() {
        let np = child(&idx(&child(f, "resourceClaims"), i), "name");
        let name = s(c, "name");
        if name.is_empty() {
            errs.push(required(&np, ""));
        } else if !claim_names.insert(name) {
            errs.push(duplicate(&np, &json!(name)));
        } else {
            errs.extend(dns1123_label(name).iter().map(|m| invalid_str(&np, name, m)));
        }
    }
    errs.extend(validate_containers(spec, &vols, grace, &child(f, "containers"), opts, host_users));
    errs.extend(validate_init_containers(spec, &vols, grace, &child(f, "initContainers"), opts, host_users));
    if bool_at(spec, "hostNetwork") {
        for (i, c) in arr(spec, "containers").iter().enumerate() {
            for (j, p) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (int(p, "hostPort").unwrap_or(0), int(p, "containerPort").unwrap_or(0));
                if (opts.resource_is_pod || hp != 0) && hp != cp {
                    let path = child(&idx(&child(&idx(&child(f, "containers"), i), "ports"), j), "hostPort");
                    errs.push(invalid_int(&path, hp, "must match `containerPort` when `hostNetwork` is true"));
                }
            }
        }
    }
    match s(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&child(f, "restartPolicy"), "")),
        other => errs.push(not_supported_str(&child(f, "restartPolicy"), other, &["Always", "OnFailure", "Never"])),
    }
    match s(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&child(f, "dnsPolicy"), "")),
        other => errs.push(not_supported_str(
            &child(f, "dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(validate_labels(get(spec, "nodeSelector"), &child(f, "nodeSelector")));
    errs.extend(validate_pod_security_context(spec, &child(f, "securityContext")));
    for (i, ps) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if ps.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            errs.push(invalid_raw(&idx(&child(f, "imagePullSecrets"), i), &json_text(ps), "only name may be set"));
        }
    }
    errs.extend(crate::affinity::validate_affinity(get(spec, "affinity"), &child(f, "affinity")));
    errs.extend(validate_dns_config(spec, &child(f, "dnsConfig")));
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let ct = s(g, "conditionType");
        errs.extend(
            qualified_name(ct)
                .iter()
                .map(|m| invalid_str(&child(&idx(&child(f, "readinessGates"), i), "conditionType"), ct, m)),
        );
    }
    let mut gates = BTreeSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let gp = idx(&child(f, "schedulingGates"), i);
        let name = s(g, "name");
        errs.extend(qualified_name(name).iter().map(|m| invalid_str(&gp, name, m)));
        if !gates.insert(name) {
            errs.push(duplicate(&gp, &json!(name)));
        }
    }
    errs.extend(crate::affinity::validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &child(f, "topologySpreadConstraints"),
    ));
    if !host_users {
        for (k, field) in [("hostNetwork", "hostNetwork"), ("hostPID", "HostPID"), ("hostIPC", "HostIPC")] {
            if bool_at(spec, k) {
                errs.push(forbidden(&child(f, field), "when `pod.Spec.HostUsers` is false"));
            }
        }
    }
    for k in ["serviceAccountName", "nodeName"] {
        let v = s(spec, k);
        if !v.is_empty() {
            errs.extend(dns1123_subdomain(v).iter().map(|m| invalid_str(&child(f, k), v, m)));
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(invalid_int(&child(f, "activeDeadlineSeconds"), ads, &inclusive_range_error(1, i64::from(i32::MAX))));
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            errs.extend(dns1123_label(v).iter().map(|m| invalid_str(&child(f, k), v, m)));
        }
    }
    errs.extend(crate::affinity::validate_tolerations(arr(spec, "tolerations"), &child(f, "tolerations")));
    for (i, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let hp = idx(&child(f, "hostAliases"), i);
        errs.extend(crate::ip::validate_ip(&child(&hp, "ip"), s(ha, "ip")));
        for (j, h) in str_list(ha, "hostnames").iter().enumerate() {
            errs.extend(dns1123_subdomain(h).iter().map(|m| invalid_str(&idx(&child(&hp, "hostnames"), j), h, m)));
        }
    }
    let pc = s(spec, "priorityClassName");
    if !pc.is_empty() {
        errs.extend(dns1123_subdomain(pc).iter().map(|m| invalid_str(&child(f, "priorityClassName"), pc, m)));
    }
    if let Some(rc) = opt_s(spec, "runtimeClassName") {
        errs.extend(dns1123_subdomain(rc).iter().map(|m| invalid_str(&child(f, "runtimeClassName"), rc, m)));
    }
    if let Some(pp) = opt_s(spec, "preemptionPolicy") {
        errs.extend(validate_preemption_policy(pp, &child(f, "preemptionPolicy")));
    }
    if let Some(oh) = get(spec, "overhead") {
        errs.extend(crate::resources::validate_requirements(Some(&json!({ "limits": oh })), &child(f, "overhead")));
    }
    if let Some(os) = get(spec, "os") {
        let name = s(os, "name");
        if name.is_empty() {
            errs.push(required(&child(&child(f, "os"), "name"), "cannot be empty"));
        } else if name != "linux" && name != "windows" {
            errs.push(not_supported_str(&child(f, "os"), name, &["linux", "windows"]));
        } else if name == "linux" && spec.pointer("/securityContext/windowsOptions").is_some_and(|v| !v.is_null()) {
            errs.push(forbidden(
                &child(&child(f, "securityContext"), "windowsOptions"),
                "windows options cannot be set for a linux pod",
            ));
        }
    }
    errs
}

/// `ValidatePreemptionPolicy` (also used by PriorityClass).
pub(crate) fn validate_preemption_policy(pp: &str, f: &str) -> Vec<Cause> {
    match pp {
        "PreemptLowerPriority" | "Never" => Vec::new(),
        "" => vec![required(f, "")],
        other => vec![not_supported_str(f, other, &["PreemptLowerPriority", "Never"])],
    }
}

/// Pod-specific annotations that upstream checks on pods and templates.
pub(crate) fn validate_pod_annotations(annotations: Option<&Value>, spec: &Value, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let ann = crate::value::str_map(annotations);
    if let Some(v) = ann.get("kubernetes.io/config.mirror")
        && s(spec, "nodeName").is_empty()
    {
        errs.push(invalid_str(
            &crate::errs::key(f, "kubernetes.io/config.mirror"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = ann.get("controller.kubernetes.io/pod-deletion-cost")
        && v.parse::<i32>().map_or(true, |n| n.to_string() != *v)
    {
        errs.push(invalid_str(
            &crate::errs::key(f, "controller.kubernetes.io/pod-deletion-cost"),
            v,
            "must be a 32bit integer",
        ));
    }
    errs
}

/// `ValidatePodTemplateSpec`: labels, annotations and the pod spec under `f` (e.g. `spec.template`).
pub(crate) fn validate_template(template: Option<&Value>, f: &str, opts: &Opts) -> Vec<Cause> {
    let empty = json!({});
    let t = template.filter(|t| t.is_object()).unwrap_or(&empty);
    let meta = t.get("metadata").unwrap_or(&Value::Null);
    let spec = t.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    // Upstream reports template labels and annotations as `<template>.labels`, without `metadata`.
    let mut errs = validate_labels(meta.get("labels"), &child(f, "labels"));
    errs.extend(validate_pod_annotations(meta.get("annotations"), spec, &child(f, "annotations")));
    errs.extend(validate_pod_spec(spec, None, &child(f, "spec"), opts));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &child(&child(f, "spec"), "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The template's `spec.restartPolicy` ("" when absent).
pub(crate) fn template_restart_policy(template: Option<&Value>) -> &str {
    template.and_then(|t| t.get("spec")).map(|s| crate::value::s(s, "restartPolicy")).unwrap_or_default()
}

/// Workloads whose pods must restart: `restartPolicy` Always and no `activeDeadlineSeconds` (`kind` names the
/// workload in upstream's message).
pub(crate) fn validate_always_restart(template: Option<&Value>, f: &str, kind: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let rp = template_restart_policy(template);
    if rp != "Always" {
        errs.push(crate::errs::not_supported_str(&child(&child(f, "spec"), "restartPolicy"), rp, &["Always"]));
    }
    if template.and_then(|t| t.get("spec")).and_then(|s| get(s, "activeDeadlineSeconds")).is_some() {
        errs.push(forbidden(
            &child(&child(f, "spec"), "activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// Go's zero-value-aware equality of two optional JSON values (absent and null are equal).
pub(crate) fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let norm = |v: Option<&Value>| v.filter(|x| !x.is_null()).cloned();
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: Opts = Opts { resource_is_pod: true, relaxed_env: true, allow_privileged: true };

    #[test]
    fn spec_defaults() {
        let mut spec = json!({"containers": [{"name": "c", "image": "nginx:1"}], "serviceAccount": "builder"});
        default_pod_spec(&mut spec);
        assert_eq!(
            spec,
            json!({"containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {}}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
                "serviceAccount": "builder", "serviceAccountName": "builder"})
        );
    }

    #[test]
    fn spec_errors() {
        let mut spec =
            json!({"containers": [], "restartPolicy": "Sometimes", "dnsPolicy": "Bad", "nodeSelector": {"a": "b c"}});
        default_pod_spec(&mut spec);
        let msgs: Vec<String> = validate_pod_spec(&spec, None, "spec", &OPTS)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(msgs[0], "spec.containers: Required value");
        assert_eq!(
            msgs[1],
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert!(msgs[2].starts_with("spec.dnsPolicy: Unsupported value: \"Bad\""));
        assert!(msgs[3].starts_with("spec.nodeSelector: Invalid value: \"b c\": a valid label must be"));
    }
}
