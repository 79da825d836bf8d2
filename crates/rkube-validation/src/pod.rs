//! Pods and PodTemplates: `SetDefaults_Pod` on top of the PodSpec defaults, `ValidatePodCreate`, and
//! `ValidatePodUpdate`'s rule that only images, activeDeadlineSeconds, added tolerations and a few more may change.

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::Options;
use crate::container::{Opts, validate_image_whitespace};
use crate::errs::{child, forbidden, idx, invalid, invalid_int, invalid_str, required};
use crate::names::inclusive_range_error;
use crate::podspec::{default_pod_spec, validate_pod_annotations, validate_pod_spec, validate_template};
use crate::value::{arr, each_mut, get, int, s};

/// Requests default to limits for each resource that has a limit but no request (pods only, not templates).
fn default_requests_from_limits(c: &mut Value) {
    let Some(r) = c.get_mut("resources").and_then(Value::as_object_mut) else { return };
    let Some(limits) = r.get("limits").and_then(Value::as_object).cloned() else { return };
    let req = r.entry("requests").or_insert_with(|| json!({}));
    if req.is_null() {
        *req = json!({});
    }
    if let Some(req) = req.as_object_mut() {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// With host networking, container ports default their host port to the container port.
fn default_host_network_ports(c: &mut Value) {
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            if p.get("hostPort").and_then(crate::value::as_int).unwrap_or(0) == 0
                && let Some(cp) = p.get("containerPort").cloned()
            {
                p.insert("hostPort".into(), cp);
            }
        }
    }
}

/// `SetDefaults_Pod` + `SetDefaults_PodSpec` and everything below, plus the v1 conversions that fill
/// `status.podIP`/`podIPs` and `hostIP`/`hostIPs` from each other.
pub fn default_pod(obj: &mut Value) {
    if let Some(spec) = crate::value::child_mut(obj, "spec") {
        let host_network = spec.get("hostNetwork").and_then(Value::as_bool).unwrap_or(false);
        for list in ["containers", "initContainers"] {
            each_mut(spec, list, |c| {
                default_requests_from_limits(c);
                if host_network {
                    default_host_network_ports(c);
                }
            });
        }
        crate::value::set_default(spec, "enableServiceLinks", json!(true));
    }
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        default_pod_spec(spec);
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        sync_ips(status, "podIP", "podIPs");
        sync_ips(status, "hostIP", "hostIPs");
    }
}

/// Keeps a singular IP field and its plural list consistent, as the v1 conversion does.
fn sync_ips(status: &mut Map<String, Value>, one: &str, many: &str) {
    let first = status.get(many).and_then(Value::as_array).and_then(|a| a.first()).and_then(|x| x.get("ip")).cloned();
    match first {
        Some(ip) => {
            status.insert(one.into(), ip);
        }
        None => {
            if let Some(ip) = status.get(one).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned) {
                status.insert(many.into(), json!([{ "ip": ip }]));
            }
        }
    }
}

/// The pod validation options upstream derives: relaxed env names are on (1.33), unless the caller says otherwise.
pub(crate) fn opts(options: &Options, resource_is_pod: bool) -> Opts {
    Opts { resource_is_pod, relaxed_env: !options.strict_env_names, allow_privileged: options.allow_privileged }
}

fn validate_pod_create_or_update(obj: &Value, options: &Options) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let name = obj.pointer("/metadata/name").and_then(Value::as_str);
    let mut errs = validate_pod_annotations(obj.pointer("/metadata/annotations"), spec, "metadata.annotations");
    errs.extend(validate_pod_spec(spec, name, "spec", &opts(options, true)));
    if s(spec, "serviceAccountName").is_empty() {
        for (vi, v) in arr(spec, "volumes").iter().enumerate() {
            let Some(p) = get(v, "projected") else { continue };
            for (si, source) in arr(p, "sources").iter().enumerate() {
                if get(source, "serviceAccountToken").is_some() {
                    let path = format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken");
                    errs.push(forbidden(&path, "must not be specified when serviceAccountName is not set"));
                }
            }
        }
    }
    errs.extend(validate_image_whitespace(spec, "spec"));
    errs
}

/// Validates a pod on create (`old` None) or update, with default options.
pub fn validate_pod(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_pod_with(obj, old, &Options::default())
}

/// Validates a pod with explicit options.
pub fn validate_pod_with(obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    let mut errs = validate_pod_create_or_update(obj, options);
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    match old {
        None => {
            if !arr(spec, "ephemeralContainers").is_empty() {
                errs.push(forbidden("spec.ephemeralContainers", "cannot be set on create"));
            }
            if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
                errs.push(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"));
            }
        }
        Some(old) => {
            let old_spec = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
            errs.extend(validate_spec_update(spec, old_spec));
        }
    }
    errs
}

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s spec rules.
fn validate_spec_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        let (n, o) = (arr(new, list), arr(old, list));
        if n.len() != o.len() {
            errs.push(forbidden(&format!("spec.{list}"), "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = s(c, "image");
            let p = child(&idx(&format!("spec.{list}"), i), "image");
            if image.is_empty() {
                errs.push(required(&p, ""));
            }
            if image.trim() != image {
                errs.push(invalid_str(&p, image, "must not have leading or trailing whitespace"));
            }
        }
    }
    match (int(new, "activeDeadlineSeconds"), int(old, "activeDeadlineSeconds")) {
        (Some(n), old_ads) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(invalid_int("spec.activeDeadlineSeconds", n, &inclusive_range_error(0, i64::from(i32::MAX))));
                return errs;
            }
            if let Some(o) = old_ads
                && o < n
            {
                errs.push(invalid_int("spec.activeDeadlineSeconds", n, "must be less than or equal to previous value"));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    errs.extend(validate_only_added_tolerations(arr(new, "tolerations"), arr(old, "tolerations")));
    // Scheduling gates may only be removed.
    let old_gates: Vec<&str> = arr(old, "schedulingGates").iter().map(|g| s(g, "name")).collect();
    for (i, g) in arr(new, "schedulingGates").iter().enumerate() {
        if !old_gates.contains(&s(g, "name")) {
            errs.push(forbidden(
                &child(&idx("spec.schedulingGates", i), "name"),
                &format!("only deletion is allowed, but found new scheduling gate '{}'", s(g, "name")),
            ));
        }
    }
    let mut munged = new.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let (Some(nc), Some(oc)) =
                (m.get_mut(list).and_then(Value::as_array_mut), old.get(list).and_then(Value::as_array))
            {
                for (c, o) in nc.iter_mut().zip(oc) {
                    if let (Some(c), Some(img)) = (c.as_object_mut(), o.get("image")) {
                        c.insert("image".into(), img.clone());
                    }
                }
            }
        }
        for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        if int(old, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
            && int(new, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert("terminationGracePeriodSeconds".into(), old["terminationGracePeriodSeconds"].clone());
        }
        // Gated pods may add node selectors and node affinity (not change or remove them).
        if !arr(old, "schedulingGates").is_empty() {
            let old_sel = crate::value::str_map(old.get("nodeSelector"));
            let new_sel = crate::value::str_map(m.get("nodeSelector"));
            if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                errs.push(crate::errs::invalid_raw(
                    "spec.nodeSelector",
                    &crate::errs::go_map(Some(&new_sel)),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            restore(m, old, "nodeSelector");
        }
    }
    if !spec_equal(&munged, old) {
        errs.push(forbidden(
            "spec",
            &format!("pod updates may not change fields other than {UPDATABLE}\n{}", spec_diff(old, &munged)),
        ));
    }
    errs
}

fn restore(m: &mut Map<String, Value>, old: &Value, k: &str) {
    match old.get(k) {
        Some(v) => {
            m.insert(k.into(), v.clone());
        }
        None => {
            m.remove(k);
        }
    }
}

use crate::value::{strip_nulls, zero_eq as spec_equal};

/// A short description of what differs (upstream prints a `cmp.Diff` of the internal structs here).
fn spec_diff(old: &Value, new: &Value) -> String {
    let (o, n) = (strip_nulls(old), strip_nulls(new));
    let mut lines = Vec::new();
    if let (Some(om), Some(nm)) = (o.as_object(), n.as_object()) {
        let keys: std::collections::BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
        for k in keys {
            if om.get(k) != nm.get(k) {
                lines.push(format!(
                    "  {k}: {} -> {}",
                    om.get(k).map_or("null".to_owned(), Value::to_string),
                    nm.get(k).map_or("null".to_owned(), Value::to_string)
                ));
            }
        }
    }
    lines.join("\n")
}

/// `validateOnlyAddedTolerations`: existing tolerations may only change their tolerationSeconds.
fn validate_only_added_tolerations(new: &[Value], old: &[Value]) -> Vec<Cause> {
    for o in old {
        let found = new.iter().any(|n| {
            let mut oc = strip_nulls(o);
            let nn = strip_nulls(n);
            if let Some(m) = oc.as_object_mut() {
                match nn.get("tolerationSeconds") {
                    Some(ts) => {
                        m.insert("tolerationSeconds".into(), ts.clone());
                    }
                    None => {
                        m.remove("tolerationSeconds");
                    }
                }
            }
            oc == nn
        });
        if !found {
            return vec![forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    crate::affinity::validate_tolerations(new, "spec.tolerations")
}

/// Defaults a PodTemplate object (`template` holds a PodTemplateSpec).
pub fn default_pod_template(obj: &mut Value) {
    crate::podspec::default_template(obj.get_mut("template"));
}

/// Validates a PodTemplate object.
pub fn validate_pod_template(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    validate_template(obj.get("template"), "template", &opts(&Options::default(), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "1"}}}]}})
    }

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    #[test]
    fn defaults_match_upstream() {
        let mut p = pod();
        default_pod(&mut p);
        assert_eq!(
            p["spec"],
            json!({"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30})
        );
        assert!(validate_pod(&p, None).is_empty(), "{:?}", validate_pod(&p, None));
    }

    #[test]
    fn create_errors() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "Web", "image": "", "ports": [{"containerPort": 0, "protocol": "HTTP", "name": "web"}, {"containerPort": 70000, "name": "web"}],
             "env": [{"name": "A=B"}], "imagePullPolicy": "Sometimes"},
            {"name": "Web", "image": "x"}]}});
        default_pod(&mut p);
        let m = msgs(&validate_pod(&p, None));
        for want in [
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].image: Required value",
            "spec.containers[0].ports[0].containerPort: Required value",
            "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[1].name: Duplicate value: \"web\"",
            "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            "spec.containers[1].name: Duplicate value: \"Web\"",
        ] {
            assert!(m.contains(&want.to_owned()), "missing {want}\nin {m:#?}");
        }
    }

    #[test]
    fn strict_env_names_option() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x", "env": [{"name": "1X"}]}]}});
        default_pod(&mut p);
        let m = msgs(&validate_pod_with(&p, None, &Options { strict_env_names: true, ..Options::default() }));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"1X\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
            ]
        );
    }

    #[test]
    fn mounts_must_name_volumes() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"volumes": [{"name": "data"}, {"name": "data"}],
            "containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "cfg", "mountPath": "/a"}, {"name": "data", "mountPath": "/a"}]}]}});
        default_pod(&mut p);
        let m = msgs(&validate_pod(&p, None));
        assert_eq!(
            m,
            vec![
                "spec.volumes[1].name: Duplicate value: \"data\"",
                "spec.containers[0].volumeMounts[0].name: Not found: \"cfg\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/a\": must be unique",
            ]
        );
    }

    #[test]
    fn update_rules() {
        let mut old = pod();
        default_pod(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["activeDeadlineSeconds"] = json!(100);
        new["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
        assert!(validate_pod(&new, Some(&old)).is_empty(), "{:?}", validate_pod(&new, Some(&old)));
        let mut bad = old.clone();
        bad["spec"]["restartPolicy"] = json!("Never");
        let m = msgs(&validate_pod(&bad, Some(&old)));
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            ),
            "{m:?}"
        );
        let mut fewer = old.clone();
        fewer["spec"]["containers"] = json!([]);
        let m = msgs(&validate_pod(&fewer, Some(&old)));
        assert!(
            m.contains(&"spec.containers: Forbidden: pod updates may not add or remove containers".to_owned()),
            "{m:?}"
        );
    }
}
