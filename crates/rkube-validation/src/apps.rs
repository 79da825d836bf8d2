//! Workload controllers: Deployment, ReplicaSet, StatefulSet, DaemonSet (apps/v1) and ReplicationController
//! (core/v1): upstream's defaults (replicas 1, RollingUpdate 25%/25%, history 10, ...) and validation (selector
//! required and matching the template, template pod spec, restart policy Always, selector immutable).

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::Options;
use crate::errs::{
    child, forbidden, go_map, go_map_value, go_selector, invalid_int, invalid_raw, invalid_str, json_text,
    not_supported, not_supported_str, required,
};
use crate::intstr::IntOrString;
use crate::podspec::{default_template, same, validate_always_restart, validate_pod_annotations, validate_template};
use crate::selector::{Selector, validate_labels, validate_selector};
use crate::value::{child_mut, get, int, s, set_default, set_default_str, str_map};

fn spec_of(obj: &Value) -> &Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    obj.get("spec").filter(|s| s.is_object()).unwrap_or_else(|| EMPTY.get_or_init(|| json!({})))
}

fn nonneg(spec: &Value, k: &str, f: &str, errs: &mut Vec<Cause>) {
    if let Some(v) = int(spec, k)
        && v < 0
    {
        errs.push(invalid_int(&child(f, k), v, "must be greater than or equal to 0"));
    }
}

/// `ValidatePositiveIntOrPercent` + `IsNotMoreThan100Percent`.
fn int_or_percent(v: Option<&Value>, f: &str, errs: &mut Vec<Cause>) -> Option<IntOrString> {
    let v = v.and_then(IntOrString::from_value)?;
    match &v {
        IntOrString::Str(s) => errs.extend(crate::names::percent(s).iter().map(|m| invalid_raw(f, &v.go_debug(), m))),
        IntOrString::Int(i) if *i < 0 => errs.push(invalid_int(f, *i, "must be greater than or equal to 0")),
        IntOrString::Int(_) => {}
    }
    if v.percent().is_some_and(|p| p > 100) {
        errs.push(invalid_raw(f, &v.go_debug(), "must not be greater than 100%"));
    }
    Some(v)
}

/// The template's labels as a map (absent is Go's nil map).
fn template_labels(spec: &Value) -> Option<&Value> {
    spec.pointer("/template/metadata/labels").filter(|v| v.is_object())
}

/// Selector validation shared by Deployment, ReplicaSet and StatefulSet; returns the built selector.
fn required_selector(spec: &Value, kind: &str, errs: &mut Vec<Cause>) -> Result<Selector, ()> {
    match get(spec, "selector") {
        None => errs.push(required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_selector(Some(sel), "spec.selector", false));
            if crate::value::obj(sel, "matchLabels").is_none_or(|m| m.is_empty())
                && crate::value::arr(sel, "matchExpressions").is_empty()
            {
                errs.push(invalid_raw(
                    "spec.selector",
                    &go_selector(sel),
                    &format!("empty selector is invalid for {kind}"),
                ));
            }
        }
    }
    Selector::from_label_selector(get(spec, "selector"))
}

/// The template labels must satisfy the selector (unless it is empty).
fn template_matches(sel: &Selector, spec: &Value, errs: &mut Vec<Cause>) {
    if !sel.is_empty() && !sel.matches(&str_map(template_labels(spec))) {
        errs.push(invalid_raw(
            "spec.template.metadata.labels",
            &go_map_value(template_labels(spec)),
            "`selector` does not match template `labels`",
        ));
    }
}

fn pod_opts(options: &Options) -> crate::container::Opts {
    crate::pod::opts(options, false)
}

/// `ValidatePodTemplateSpecForReplicaSet`, shared by Deployment and ReplicaSet.
fn validate_rs_template(spec: &Value, options: &Options, errs: &mut Vec<Cause>) {
    if let Some(sel) = required_selector_or_invalid(spec, errs) {
        template_matches(&sel, spec, errs);
        errs.extend(validate_template(get(spec, "template"), "spec.template", &pod_opts(options)));
        errs.extend(validate_always_restart(get(spec, "template"), "spec.template", "ReplicaSet"));
    }
}

fn required_selector_or_invalid(spec: &Value, errs: &mut Vec<Cause>) -> Option<Selector> {
    match Selector::from_label_selector(get(spec, "selector")) {
        Ok(s) => Some(s),
        Err(()) => {
            let sel = get(spec, "selector").cloned().unwrap_or(Value::Null);
            errs.push(invalid_raw("spec.selector", &go_selector(&sel), "invalid label selector"));
            None
        }
    }
}

fn selector_immutable(spec: &Value, old: Option<&Value>, errs: &mut Vec<Cause>) {
    if let Some(old) = old
        && !same(get(spec, "selector"), get(spec_of(old), "selector"))
    {
        let sel = get(spec, "selector").map_or_else(|| "null".to_owned(), go_selector);
        errs.push(invalid_raw("spec.selector", &sel, "field is immutable"));
    }
}

/// Defaults a Deployment (`SetDefaults_Deployment` and the template's pod spec).
pub fn default_deployment(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    set_default(spec, "replicas", json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if strategy.is_null() {
        *strategy = json!({});
    }
    if let Some(st) = strategy.as_object_mut() {
        set_default_str(st, "type", "RollingUpdate");
        if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if ru.is_null() {
                *ru = json!({});
            }
            if let Some(ru) = ru.as_object_mut() {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec.get_mut("template"));
}

/// Validates a Deployment on create or update.
pub fn validate_deployment(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_deployment_with(obj, old, &Options::default())
}

/// Validates a Deployment with explicit options.
pub fn validate_deployment_with(obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    let spec = spec_of(obj);
    let mut errs = Vec::new();
    nonneg(spec, "replicas", "spec", &mut errs);
    let _ = required_selector(spec, "deployment", &mut errs);
    validate_rs_template(spec, options, &mut errs);
    let strategy = get(spec, "strategy").cloned().unwrap_or_else(|| json!({}));
    match s(&strategy, "type") {
        "Recreate" => {
            if get(&strategy, "rollingUpdate").is_some() {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get(&strategy, "rollingUpdate") {
            None => errs.push(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")),
            Some(ru) => {
                let mu =
                    int_or_percent(get(ru, "maxUnavailable"), "spec.strategy.rollingUpdate.maxUnavailable", &mut errs);
                let ms = int_or_percent(get(ru, "maxSurge"), "spec.strategy.rollingUpdate.maxSurge", &mut errs);
                let (mu, ms) = (mu.unwrap_or(IntOrString::Int(0)), ms.unwrap_or(IntOrString::Int(0)));
                if mu.int_or_percent() == 0 && ms.int_or_percent() == 0 {
                    errs.push(invalid_raw(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        &mu.go_debug(),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        },
        other => {
            let ru = if get(&strategy, "rollingUpdate").is_some() {
                json_text(&strategy["rollingUpdate"])
            } else {
                "(*apps.RollingUpdateDeployment)(nil)".to_owned()
            };
            let raw = format!("apps.DeploymentStrategy{{Type:{other:?}, RollingUpdate:{ru}}}");
            errs.push(crate::errs::not_supported_raw("spec.strategy", &raw, &["Recreate", "RollingUpdate"]));
        }
    }
    nonneg(spec, "minReadySeconds", "spec", &mut errs);
    nonneg(spec, "revisionHistoryLimit", "spec", &mut errs);
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        nonneg(spec, "progressDeadlineSeconds", "spec", &mut errs);
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(invalid_int("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"));
        }
    }
    selector_immutable(spec, old, &mut errs);
    errs
}

/// Defaults a ReplicaSet.
pub fn default_replica_set(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    set_default(spec, "replicas", json!(1));
    default_template(spec.get_mut("template"));
}

/// Validates a ReplicaSet on create or update.
pub fn validate_replica_set(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let spec = spec_of(obj);
    let mut errs = Vec::new();
    nonneg(spec, "replicas", "spec", &mut errs);
    nonneg(spec, "minReadySeconds", "spec", &mut errs);
    // Upstream's message names deployments here too.
    let _ = required_selector(spec, "deployment", &mut errs);
    validate_rs_template(spec, &Options::default(), &mut errs);
    selector_immutable(spec, old, &mut errs);
    errs
}

/// Defaults a DaemonSet.
pub fn default_daemon_set(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if us.is_null() {
        *us = json!({});
    }
    if let Some(us) = us.as_object_mut() {
        set_default_str(us, "type", "RollingUpdate");
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = us.entry("rollingUpdate").or_insert_with(|| json!({}));
            if ru.is_null() {
                *ru = json!({});
            }
            if let Some(ru) = ru.as_object_mut() {
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(spec.get_mut("template"));
}

/// Validates a DaemonSet on create or update.
pub fn validate_daemon_set(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let spec = spec_of(obj);
    let mut errs = validate_selector(get(spec, "selector"), "spec.selector", false);
    if let Ok(sel) = Selector::from_label_selector(get(spec, "selector"))
        && !sel.matches(&str_map(template_labels(spec)))
    {
        errs.push(invalid_raw(
            "spec.template.metadata.labels",
            &go_map_value(template_labels(spec)),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(sel) = get(spec, "selector")
        && crate::value::obj(sel, "matchLabels").is_none_or(|m| m.is_empty())
        && crate::value::arr(sel, "matchExpressions").is_empty()
    {
        errs.push(invalid_raw("spec.selector", &go_selector(sel), "empty selector is invalid for daemonset"));
    }
    errs.extend(validate_template(get(spec, "template"), "spec.template", &pod_opts(&Options::default())));
    errs.extend(validate_always_restart(get(spec, "template"), "spec.template", "DaemonSet"));
    nonneg(spec, "minReadySeconds", "spec", &mut errs);
    nonneg(spec, "templateGeneration", "spec", &mut errs);
    let us = get(spec, "updateStrategy").cloned().unwrap_or_else(|| json!({}));
    match s(&us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match get(&us, "rollingUpdate") {
            None => errs.push(required("spec.updateStrategy.rollingUpdate", "")),
            Some(ru) => {
                let f = "spec.updateStrategy.rollingUpdate";
                let mu = int_or_percent(get(ru, "maxUnavailable"), &child(f, "maxUnavailable"), &mut errs)
                    .unwrap_or(IntOrString::Int(0));
                let ms = int_or_percent(get(ru, "maxSurge"), &child(f, "maxSurge"), &mut errs)
                    .unwrap_or(IntOrString::Int(0));
                match (mu.int_or_percent() != 0, ms.int_or_percent() != 0) {
                    (true, true) => errs.push(invalid_raw(
                        &child(f, "maxSurge"),
                        &ms.go_debug(),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    (false, false) => {
                        errs.push(required(&child(f, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
                    }
                    _ => {}
                }
            }
        },
        other => errs.push(not_supported("spec.updateStrategy", &json!(other), &["RollingUpdate", "OnDelete"])),
    }
    nonneg(spec, "revisionHistoryLimit", "spec", &mut errs);
    selector_immutable(spec, old, &mut errs);
    errs
}

/// Defaults a StatefulSet (including its volume claim templates).
pub fn default_stateful_set(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    set_default_str(spec, "podManagementPolicy", "OrderedReady");
    let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if us.is_null() {
        *us = json!({});
    }
    if let Some(us) = us.as_object_mut() {
        if us.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
            us.insert("type".into(), json!("RollingUpdate"));
            set_default(us, "rollingUpdate", json!({}));
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = us.get_mut("rollingUpdate").and_then(Value::as_object_mut)
        {
            set_default(ru, "partition", json!(0));
        }
    }
    let policy = spec.entry("persistentVolumeClaimRetentionPolicy").or_insert_with(|| json!({}));
    if policy.is_null() {
        *policy = json!({});
    }
    if let Some(p) = policy.as_object_mut() {
        set_default_str(p, "whenDeleted", "Retain");
        set_default_str(p, "whenScaled", "Retain");
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(spec.get_mut("template"));
    crate::value::each_mut(spec, "volumeClaimTemplates", crate::storage::default_persistent_volume_claim);
}

/// Validates a StatefulSet on create or update (upstream does not validate its template's pod spec).
pub fn validate_stateful_set(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let spec = spec_of(obj);
    let mut errs = Vec::new();
    match s(spec, "podManagementPolicy") {
        "" => errs.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid_str("spec.podManagementPolicy", other, "must be 'OrderedReady' or 'Parallel'")),
    }
    let us = get(spec, "updateStrategy").cloned().unwrap_or_else(|| json!({}));
    match s(&us, "type") {
        "" => errs.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = get(&us, "rollingUpdate") {
                errs.push(invalid_raw(
                    "spec.updateStrategy.rollingUpdate",
                    &json_text(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(&us, "rollingUpdate") {
                let f = "spec.updateStrategy.rollingUpdate";
                nonneg(ru, "partition", f, &mut errs);
                if let Some(mu) = int_or_percent(get(ru, "maxUnavailable"), &child(f, "maxUnavailable"), &mut errs)
                    && mu.int_or_percent() == 0
                {
                    errs.push(invalid_raw(&child(f, "maxUnavailable"), &mu.go_debug(), "cannot be 0"));
                }
            }
        }
        _ => errs.push(invalid_raw("spec.updateStrategy", &json_text(&us), "must be 'RollingUpdate' or 'OnDelete'")),
    }
    if let Some(p) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for k in ["whenDeleted", "whenScaled"] {
            let v = s(p, k);
            if v != "Retain" && v != "Delete" {
                errs.push(not_supported_str(
                    &child("spec.persistentVolumeClaimRetentionPolicy", k),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonneg(spec, "replicas", "spec", &mut errs);
    nonneg(spec, "minReadySeconds", "spec", &mut errs);
    if let Some(start) = spec.pointer("/ordinals/start").and_then(crate::value::as_int)
        && start < 0
    {
        errs.push(invalid_int("spec.ordinals.start", start, "must be greater than or equal to 0"));
    }
    match required_selector(spec, "statefulset", &mut errs) {
        Err(()) => {
            let sel = get(spec, "selector").cloned().unwrap_or(Value::Null);
            errs.push(invalid_raw("spec.selector", &go_selector(&sel), ""));
        }
        Ok(sel) => {
            template_matches(&sel, spec, &mut errs);
            let meta = spec.pointer("/template/metadata").unwrap_or(&Value::Null);
            errs.extend(validate_labels(meta.get("labels"), "spec.template.labels"));
            errs.extend(validate_pod_annotations(
                meta.get("annotations"),
                spec.pointer("/template/spec").unwrap_or(&Value::Null),
                "spec.template.annotations",
            ));
        }
    }
    errs.extend(validate_always_restart(get(spec, "template"), "spec.template", "StatefulSet"));
    if let Some(old) = old {
        let mut a = spec.clone();
        let mut b = spec_of(old).clone();
        for k in [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            for o in [&mut a, &mut b] {
                if let Some(m) = o.as_object_mut() {
                    m.remove(k);
                }
            }
        }
        if !crate::value::zero_eq(&a, &b) {
            errs.push(forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    errs
}

/// Defaults a ReplicationController: selector and object labels from the template labels, replicas 1.
pub fn default_replication_controller(obj: &mut Value) {
    let labels =
        obj.pointer("/spec/template/metadata/labels").filter(|l| l.as_object().is_some_and(|m| !m.is_empty())).cloned();
    if let Some(labels) = labels {
        if let Some(spec) = child_mut(obj, "spec")
            && spec.get("selector").and_then(Value::as_object).is_none_or(|m| m.is_empty())
        {
            spec.insert("selector".into(), labels.clone());
        }
        if let Some(meta) = child_mut(obj, "metadata")
            && meta.get("labels").and_then(Value::as_object).is_none_or(|m| m.is_empty())
        {
            meta.insert("labels".into(), labels);
        }
    }
    if let Some(spec) = child_mut(obj, "spec") {
        set_default(spec, "replicas", json!(1));
        default_template(spec.get_mut("template"));
    }
}

/// Validates a ReplicationController on create or update.
pub fn validate_replication_controller(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let spec = spec_of(obj);
    let mut errs = Vec::new();
    nonneg(spec, "minReadySeconds", "spec", &mut errs);
    let selector = str_map(get(spec, "selector"));
    if selector.is_empty() {
        errs.push(required("spec.selector", ""));
    }
    nonneg(spec, "replicas", "spec", &mut errs);
    match get(spec, "template") {
        None => errs.push(required("spec.template", "")),
        Some(t) => {
            let labels = str_map(t.pointer("/metadata/labels"));
            if !selector.is_empty() && !Selector::from_map(&selector).matches(&labels) {
                let raw = if t.pointer("/metadata/labels").is_some_and(Value::is_object) {
                    go_map(Some(&labels))
                } else {
                    go_map(None)
                };
                errs.push(invalid_raw(
                    "spec.template.metadata.labels",
                    &raw,
                    "`selector` does not match template `labels`",
                ));
            }
            errs.extend(validate_template(Some(t), "spec.template", &pod_opts(&Options::default())));
            errs.extend(validate_always_restart(Some(t), "spec.template", "ReplicationController"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    fn deployment() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}})
    }

    #[test]
    fn deployment_defaults() {
        let mut d = deployment();
        default_deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert!(d["spec"]["template"]["spec"].get("enableServiceLinks").is_none());
        assert!(validate_deployment(&d, None).is_empty(), "{:?}", validate_deployment(&d, None));
    }

    #[test]
    fn deployment_errors() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        default_deployment(&mut d);
        assert_eq!(
            msgs(&validate_deployment(&d, None)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let mut none = deployment();
        none["spec"].as_object_mut().map(|m| m.remove("selector"));
        default_deployment(&mut none);
        assert_eq!(
            msgs(&validate_deployment(&none, None)),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut bad_surge = deployment();
        bad_surge["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": "abc", "maxUnavailable": 0}});
        default_deployment(&mut bad_surge);
        let m = msgs(&validate_deployment(&bad_surge, None));
        assert_eq!(
            m[0],
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"abc\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        );
        assert_eq!(
            m[1],
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
        );
    }

    #[test]
    fn selector_is_immutable() {
        let mut old = deployment();
        default_deployment(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        new["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
        assert_eq!(
            msgs(&validate_deployment(&new, Some(&old))),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
    }

    #[test]
    fn statefulset_and_daemonset() {
        let mut sts = deployment();
        sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
        default_stateful_set(&mut sts);
        assert_eq!(sts["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["status"], json!({"phase": "Pending"}));
        assert!(validate_stateful_set(&sts, None).is_empty(), "{:?}", validate_stateful_set(&sts, None));
        let mut changed = sts.clone();
        changed["spec"]["serviceName"] = json!("other");
        assert_eq!(validate_stateful_set(&changed, Some(&sts))[0].field, "spec");
        let mut ds = deployment();
        default_daemon_set(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert!(validate_daemon_set(&ds, None).is_empty(), "{:?}", validate_daemon_set(&ds, None));
    }

    #[test]
    fn replication_controller() {
        let mut rc = json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        default_replication_controller(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(validate_replication_controller(&rc, None).is_empty());
    }
}
