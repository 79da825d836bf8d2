//! Jobs and CronJobs (batch/v1): `SetDefaults_Job`/`SetDefaults_CronJob`, the selector and labels the job
//! strategy generates from the uid, and `ValidateJob`/`ValidateJobUpdate`/`ValidateCronJob*`.

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::Options;
use crate::errs::{
    child, go_map_value, go_selector, invalid_int, invalid_raw, invalid_str, json_text, key, not_supported_str,
    required,
};
use crate::podspec::{default_template, same, validate_template};
use crate::selector::{Selector, validate_selector};
use crate::value::{child_mut, get, int, opt_s, s, set_default, set_default_str, str_map};

const LEGACY_UID: &str = "controller-uid";
const LEGACY_NAME: &str = "job-name";
const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn default_job_spec_template(spec: &mut Map<String, Value>) {
    default_template(spec.get_mut("template"));
    if let Some(rules) = spec.get_mut("podFailurePolicy").and_then(|p| p.get_mut("rules")).and_then(Value::as_array_mut)
    {
        for rule in rules {
            if let Some(conds) = rule.get_mut("onPodConditions").and_then(Value::as_array_mut) {
                for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                    set_default_str(c, "status", "True");
                }
            }
        }
    }
}

/// The job strategy's `generateSelector`: template labels and a `controller-uid` selector from the uid.
fn generate_selector(obj: &mut Value) {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_owned)
    else {
        return;
    };
    let Some(spec) = child_mut(obj, "spec") else { return };
    let Some(template) = spec.entry("template").or_insert_with(|| json!({})).as_object_mut() else { return };
    let Some(meta) = template.entry("metadata").or_insert_with(|| json!({})).as_object_mut() else { return };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if labels.is_null() {
        *labels = json!({});
    }
    if let Some(l) = labels.as_object_mut() {
        for k in [LEGACY_NAME, NAME_LABEL] {
            l.entry(k).or_insert_with(|| json!(name));
        }
        for k in [LEGACY_UID, UID_LABEL] {
            l.entry(k).or_insert_with(|| json!(uid));
        }
    }
    let sel = spec.entry("selector").or_insert_with(|| json!({}));
    if sel.is_null() {
        *sel = json!({});
    }
    if let Some(sel) = sel.as_object_mut() {
        let ml = sel.entry("matchLabels").or_insert_with(|| json!({}));
        if ml.is_null() {
            *ml = json!({});
        }
        if let Some(ml) = ml.as_object_mut() {
            ml.entry(UID_LABEL).or_insert_with(|| json!(uid));
        }
    }
}

/// Defaults a Job: `SetDefaults_Job`, the template's pod spec, and (once the registry has set `metadata.uid`,
/// unless `manualSelector`) the generated selector and labels. Object labels copy the template labels when
/// the job has none, as reading the stored job back does upstream.
pub fn default_job(obj: &mut Value) {
    if let Some(spec) = child_mut(obj, "spec") {
        if spec.get("completions").is_none_or(Value::is_null) && spec.get("parallelism").is_none_or(Value::is_null) {
            spec.insert("completions".into(), json!(1));
        }
        set_default(spec, "parallelism", json!(1));
        let per_index = spec.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null());
        set_default(spec, "backoffLimit", json!(if per_index { i64::from(i32::MAX) } else { 6 }));
        set_default_str(spec, "completionMode", "NonIndexed");
        set_default(spec, "suspend", json!(false));
        let pfp = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
        set_default(spec, "podReplacementPolicy", json!(if pfp { "Failed" } else { "TerminatingOrFailed" }));
        set_default(spec, "manualSelector", json!(false));
        default_job_spec_template(spec);
    }
    if obj.pointer("/spec/manualSelector").and_then(Value::as_bool) != Some(true) {
        generate_selector(obj);
    }
    let labels = obj.pointer("/spec/template/metadata/labels").filter(|l| l.is_object()).cloned();
    if let Some(labels) = labels
        && let Some(meta) = child_mut(obj, "metadata")
        && meta.get("labels").and_then(Value::as_object).is_none_or(|m| m.is_empty())
    {
        meta.insert("labels".into(), labels);
    }
}

fn nonneg(spec: &Value, k: &str, f: &str, errs: &mut Vec<Cause>) {
    if let Some(v) = int(spec, k)
        && v < 0
    {
        errs.push(invalid_int(&child(f, k), v, "must be greater than or equal to 0"));
    }
}

/// `validateJobSpec` (`f` is `spec` or `spec.jobTemplate.spec`).
fn validate_job_spec_inner(spec: &Value, f: &str, options: &Options) -> Vec<Cause> {
    let mut errs = Vec::new();
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        nonneg(spec, k, f, &mut errs);
    }
    let per_index = int(spec, "backoffLimitPerIndex");
    let max_failed = int(spec, "maxFailedIndexes");
    if max_failed.is_some() {
        nonneg(spec, "maxFailedIndexes", f, &mut errs);
        if per_index.is_none() {
            errs.push(required(&child(f, "backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
        }
    }
    if let Some(mb) = opt_s(spec, "managedBy") {
        let p = child(f, "managedBy");
        match mb.split_once('/') {
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                errs.extend(crate::names::dns1123_subdomain(host).iter().map(|m| invalid_str(&p, host, m)));
            }
            _ if mb.is_empty() => errs.push(required(&p, "")),
            _ => errs.push(invalid_str(&p, mb, "must be a domain-prefixed path (such as \"acme.io/foo\")")),
        }
        if mb.len() > 63 {
            errs.push(crate::errs::too_long(&p, 63));
        }
    }
    let mode = opt_s(spec, "completionMode");
    let completions = int(spec, "completions");
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            errs.push(not_supported_str(&child(f, "completionMode"), m, &["NonIndexed", "Indexed"]));
        }
        if m == "Indexed" {
            if completions.is_none() {
                errs.push(required(&child(f, "completions"), "when completion mode is Indexed"));
            }
            if let Some(p) = int(spec, "parallelism")
                && p > 100_000
            {
                errs.push(invalid_int(
                    &child(f, "parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
            if let (Some(c), Some(mfi)) = (completions, max_failed)
                && mfi > c
            {
                errs.push(invalid_int(&child(f, "maxFailedIndexes"), mfi, "must be less than or equal to completions"));
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(b) = per_index {
            errs.push(invalid_int(&child(f, "backoffLimitPerIndex"), b, "requires indexed completion mode"));
        }
        if let Some(m) = max_failed {
            errs.push(invalid_int(&child(f, "maxFailedIndexes"), m, "requires indexed completion mode"));
        }
    }
    if let Some(sp) = get(spec, "successPolicy")
        && mode != Some("Indexed")
    {
        errs.push(invalid_raw(&child(f, "successPolicy"), &json_text(sp), "requires indexed completion mode"));
    }
    let pfp = get(spec, "podFailurePolicy").is_some();
    if let Some(rp) = opt_s(spec, "podReplacementPolicy") {
        if pfp && rp != "Failed" {
            errs.push(not_supported_str(&child(f, "podReplacementPolicy"), rp, &["Failed"]));
        } else if !pfp && rp != "Failed" && rp != "TerminatingOrFailed" {
            errs.push(not_supported_str(&child(f, "podReplacementPolicy"), rp, &["Failed", "TerminatingOrFailed"]));
        }
    }
    errs.extend(validate_template(get(spec, "template"), &child(f, "template"), &crate::pod::opts(options, false)));
    let rp_path = child(&child(&child(f, "template"), "spec"), "restartPolicy");
    match crate::podspec::template_restart_policy(get(spec, "template")) {
        "Always" | "" => errs.push(required(&rp_path, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" if pfp => errs.push(invalid_str(
            &rp_path,
            "OnFailure",
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(not_supported_str(&rp_path, other, &["OnFailure", "Never"])),
    }
    errs
}

/// `ValidateHasLabel` on the template's labels.
fn has_label(labels: Option<&Value>, k: &str, want: &str, errs: &mut Vec<Cause>) {
    let path = key("spec.template.metadata.labels", k);
    match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
        None => errs.push(required(&path, &format!("must be '{want}'"))),
        Some(v) if v != want => errs.push(invalid_raw(&path, &go_map_value(labels), &format!("must be '{want}'"))),
        Some(_) => {}
    }
}

fn validate_generated_selector(obj: &Value, prefixed: bool) -> Vec<Cause> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) || get(spec, "selector").is_none() {
        return errs;
    }
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if uid.is_empty() {
        errs.push(required("metadata.uid", ""));
    }
    let labels = spec.pointer("/template/metadata/labels").filter(|l| l.is_object());
    has_label(labels, LEGACY_UID, uid, &mut errs);
    has_label(labels, LEGACY_NAME, name, &mut errs);
    let mut expected = std::collections::BTreeMap::new();
    if prefixed {
        has_label(labels, UID_LABEL, uid, &mut errs);
        has_label(labels, NAME_LABEL, name, &mut errs);
        expected.insert(UID_LABEL.to_owned(), uid.to_owned());
        expected.insert(NAME_LABEL.to_owned(), name.to_owned());
    }
    expected.insert(LEGACY_UID.to_owned(), uid.to_owned());
    expected.insert(LEGACY_NAME.to_owned(), name.to_owned());
    if let Ok(sel) = Selector::from_label_selector(get(spec, "selector"))
        && !sel.matches(&expected)
    {
        errs.push(invalid_raw("spec.selector", &go_selector(&spec["selector"]), "`selector` not auto-generated"));
    }
    errs
}

/// `ValidateJobSpec`: the inner checks plus the selector.
fn validate_job_spec(spec: &Value, options: &Options) -> Vec<Cause> {
    let mut errs = validate_job_spec_inner(spec, "spec", options);
    match get(spec, "selector") {
        None => errs.push(required("spec.selector", "")),
        Some(sel) => errs.extend(validate_selector(Some(sel), "spec.selector", false)),
    }
    if let Ok(sel) = Selector::from_label_selector(get(spec, "selector")) {
        let labels = spec.pointer("/template/metadata/labels").filter(|l| l.is_object());
        if !sel.matches(&str_map(labels)) {
            errs.push(invalid_raw(
                "spec.template.metadata.labels",
                &go_map_value(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs
}

/// Validates a Job on create or update.
pub fn validate_job(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_job_with(obj, old, &Options::default())
}

/// Validates a Job with explicit options. On update upstream runs the spec checks twice (once for the object,
/// once inside the update checks), so their causes appear twice, as they do upstream.
pub fn validate_job_with(obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let prefixed = match old {
        None => true,
        Some(o) => {
            let l = o.pointer("/spec/template/metadata/labels");
            l.and_then(|l| l.get(NAME_LABEL)).is_some() && l.and_then(|l| l.get(UID_LABEL)).is_some()
        }
    };
    let mut errs = validate_generated_selector(obj, prefixed);
    errs.extend(validate_job_spec(spec, options));
    if opt_s(spec, "completionMode") == Some("Indexed")
        && let Some(c) = int(spec, "completions").filter(|c| *c > 0)
    {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let host = format!("{name}-{}", c - 1);
        if !crate::names::dns1123_label(&host).is_empty() {
            errs.push(invalid_str(
                "metadata.name",
                name,
                &format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
        errs.extend(validate_job_spec(spec, options));
        errs.extend(validate_job_update(spec, old_spec, old));
    }
    errs
}

fn validate_job_update(spec: &Value, old_spec: &Value, old: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let indexed = opt_s(spec, "completionMode") == Some("Indexed");
    if !same(spec.get("completions"), old_spec.get("completions")) {
        if !indexed {
            errs.push(crate::errs::invalid(
                "spec.completions",
                spec.get("completions").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        } else if let Some(c) = int(spec, "completions")
            && Some(c) != int(spec, "parallelism")
        {
            errs.push(invalid_int("spec.completions", c, "can only be modified in tandem with spec.parallelism"));
        }
    }
    if !same(spec.get("selector"), old_spec.get("selector")) {
        let sel = get(spec, "selector").map_or_else(|| "null".to_owned(), go_selector);
        errs.push(invalid_raw("spec.selector", &sel, "field is immutable"));
    }
    // Suspended jobs that never started may change scheduling directives of their template.
    let mutable = old_spec.get("suspend").and_then(Value::as_bool) == Some(true)
        && old.pointer("/status/startTime").is_none_or(Value::is_null);
    let mut new_t = get(spec, "template").cloned().unwrap_or(Value::Null);
    let mut old_t = get(old_spec, "template").cloned().unwrap_or(Value::Null);
    if mutable {
        for t in [&mut new_t, &mut old_t] {
            if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(s) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for k in ["nodeSelector", "tolerations", "schedulingGates"] {
                    s.remove(k);
                }
                if let Some(a) = s.get_mut("affinity").and_then(Value::as_object_mut) {
                    a.remove("nodeAffinity");
                }
                if s.get("affinity").and_then(Value::as_object).is_some_and(|a| a.is_empty()) {
                    s.remove("affinity");
                }
            }
        }
    }
    if !crate::value::zero_eq(&new_t, &old_t) {
        errs.push(invalid_raw(
            "spec.template",
            &json_text(spec.get("template").unwrap_or(&Value::Null)),
            "field is immutable",
        ));
    }
    for k in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"] {
        if !same(spec.get(k), old_spec.get(k)) {
            let v = spec.get(k).unwrap_or(&Value::Null);
            let raw = crate::errs::value_text(v);
            errs.push(invalid_raw(&child("spec", k), &raw, "field is immutable"));
        }
    }
    errs
}

/// Defaults a CronJob (`SetDefaults_CronJob` and the job template's pod spec).
pub fn default_cron_job(obj: &mut Value) {
    let Some(spec) = child_mut(obj, "spec") else { return };
    set_default_str(spec, "concurrencyPolicy", "Allow");
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(js) = spec.get_mut("jobTemplate").and_then(|t| t.get_mut("spec")).and_then(Value::as_object_mut) {
        default_job_spec_template(js);
    }
}

fn validate_time_zone(tz: &Value, f: &str) -> Vec<Cause> {
    let Some(tz) = tz.as_str() else { return Vec::new() };
    if tz.is_empty() {
        return vec![invalid_str(f, tz, "timeZone must be nil or non-empty string")];
    }
    for part in tz.split('/') {
        let ok_chars = !part.is_empty()
            && part.len() <= 14
            && part.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'));
        if part == "." || part == ".." || part.starts_with('-') || !ok_chars {
            return vec![invalid_str(f, tz, &format!("unknown time zone {tz}"))];
        }
    }
    if tz.eq_ignore_ascii_case("Local") {
        return vec![invalid_str(
            f,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )];
    }
    Vec::new()
}

/// Validates a CronJob on create or update (names longer than 52 characters are refused on create only).
pub fn validate_cron_job(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_cron_job_with(obj, old, &Options::default())
}

/// Validates a CronJob with explicit options.
pub fn validate_cron_job_with(obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let old_spec = old.and_then(|o| o.get("spec"));
    let mut errs = Vec::new();
    let schedule = s(spec, "schedule");
    if schedule.is_empty() {
        errs.push(required("spec.schedule", ""));
    } else {
        if let Err(e) = crate::cron::parse_standard(schedule, &jiff::tz::TimeZone::UTC) {
            errs.push(invalid_str("spec.schedule", schedule, &e));
        }
        let allow_tz = old_spec.is_some_and(|o| s(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && get(spec, "timeZone").is_some() {
            errs.push(invalid_str(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(invalid_str(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    nonneg(spec, "startingDeadlineSeconds", "spec", &mut errs);
    if old_spec.is_none_or(|o| !same(o.get("timeZone"), spec.get("timeZone")))
        && let Some(tz) = get(spec, "timeZone")
    {
        errs.extend(validate_time_zone(tz, "spec.timeZone"));
    }
    match s(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(required("spec.concurrencyPolicy", "")),
        other => errs.push(not_supported_str("spec.concurrencyPolicy", other, &["Allow", "Forbid", "Replace"])),
    }
    let job_spec = spec.pointer("/jobTemplate/spec").filter(|s| s.is_object()).unwrap_or(&empty);
    errs.extend(validate_job_spec_inner(job_spec, "spec.jobTemplate.spec", options));
    if let Some(sel) = get(job_spec, "selector") {
        errs.push(invalid_raw(
            "spec.jobTemplate.spec.selector",
            &go_selector(sel),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(crate::errs::not_supported("spec.jobTemplate.spec.manualSelector", &json!(true), &["nil", "false"]));
    }
    nonneg(spec, "successfulJobsHistoryLimit", "spec", &mut errs);
    nonneg(spec, "failedJobsHistoryLimit", "spec", &mut errs);
    if old.is_none() {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if name.len() > 52 {
            errs.push(invalid_str("metadata.name", name, "must be no more than 52 characters"));
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

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5"}]}}}})
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut j = job();
        default_job(&mut j);
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(spec["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}));
        let labels = json!({"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi", "controller-uid": "u-1", "job-name": "pi"});
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(j["metadata"]["labels"], labels);
        assert!(validate_job(&j, None).is_empty(), "{:?}", validate_job(&j, None));
    }

    #[test]
    fn job_errors() {
        let mut j = job();
        j["spec"]["completions"] = json!(-1);
        j["spec"]["completionMode"] = json!("Sometimes");
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        default_job(&mut j);
        let m = msgs(&validate_job(&j, None));
        for want in [
            "spec.completions: Invalid value: -1: must be greater than or equal to 0",
            "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        ] {
            assert!(m.contains(&want.to_owned()), "missing {want}\nin {m:#?}");
        }
    }

    #[test]
    fn job_update_immutability() {
        let mut old = job();
        default_job(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:6");
        let m = msgs(&validate_job(&new, Some(&old)));
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("spec.template: Invalid value: ") && m[0].ends_with(": field is immutable"), "{m:?}");
        let mut par = old.clone();
        par["spec"]["parallelism"] = json!(3);
        assert!(validate_job(&par, Some(&old)).is_empty());
    }

    #[test]
    fn cron_jobs() {
        let mut cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        default_cron_job(&mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cj["spec"]["suspend"], false);
        assert!(validate_cron_job(&cj, None).is_empty(), "{:?}", validate_cron_job(&cj, None));
        cj["spec"]["schedule"] = json!("* * *");
        cj["spec"]["concurrencyPolicy"] = json!("Sometimes");
        assert_eq!(
            msgs(&validate_cron_job(&cj, None)),
            vec![
                "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ]
        );
    }
}
