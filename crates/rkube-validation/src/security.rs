//! Security contexts of containers (and the seccomp/AppArmor profile rules pods share): ids, privileged,
//! procMount, privilege escalation.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::container::{Opts, validate_local_descending_path};
use crate::errs::{child, forbidden, invalid_int, invalid_raw, invalid_str, json_text, not_supported_str, required};
use crate::names::unix_id;
use crate::value::{get, has, int, opt_s, s};

fn validate_seccomp(sp: Option<&Value>, f: &str) -> Vec<Cause> {
    let Some(sp) = sp else { return Vec::new() };
    let mut errs = Vec::new();
    let t = s(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(required(&child(f, "type"), "type is required when seccompProfile is set")),
        other => errs.push(not_supported_str(&child(f, "type"), other, &["Localhost", "RuntimeDefault", "Unconfined"])),
    }
    if t == "Localhost" {
        match opt_s(sp, "localhostProfile") {
            None => errs.push(required(&child(f, "localhostProfile"), "must be set when seccomp type is Localhost")),
            Some(p) => errs.extend(validate_local_descending_path(p, &child(f, "localhostProfile"))),
        }
    } else if has(sp, "localhostProfile") {
        errs.push(invalid_raw(
            &child(f, "localhostProfile"),
            &json_text(sp),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

/// `ValidateAppArmorProfileField`.
pub(crate) fn validate_apparmor(p: Option<&Value>, f: &str) -> Vec<Cause> {
    let Some(p) = p else { return Vec::new() };
    let mut errs = Vec::new();
    match s(p, "type") {
        "Localhost" => match opt_s(p, "localhostProfile") {
            None => errs.push(required(&child(f, "localhostProfile"), "must be set when AppArmor type is Localhost")),
            Some(lp) if lp.trim() != lp => {
                errs.push(invalid_str(&child(f, "localhostProfile"), lp, "must not be padded with whitespace"))
            }
            Some("") => {
                errs.push(required(&child(f, "localhostProfile"), "must be set when AppArmor type is Localhost"))
            }
            Some(_) => {}
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = opt_s(p, "localhostProfile") {
                errs.push(invalid_str(
                    &child(f, "localhostProfile"),
                    lp,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(required(&child(f, "type"), "type is required when appArmorProfile is set")),
        other => errs.push(not_supported_str(&child(f, "type"), other, &["Localhost", "RuntimeDefault", "Unconfined"])),
    }
    errs
}

/// Pod-level seccomp profile validation, shared with the pod security context.
pub(crate) fn validate_seccomp_field(sp: Option<&Value>, f: &str) -> Vec<Cause> {
    validate_seccomp(sp, f)
}

pub(crate) fn validate_security_context(sc: Option<&Value>, f: &str, host_users: bool, opts: &Opts) -> Vec<Cause> {
    let Some(sc) = sc else { return Vec::new() };
    let mut errs = Vec::new();
    let privileged = sc.get("privileged").and_then(Value::as_bool);
    if privileged == Some(true) && !opts.allow_privileged {
        errs.push(forbidden(&child(f, "privileged"), "disallowed by cluster policy"));
    }
    for k in ["runAsUser", "runAsGroup"] {
        if let Some(id) = int(sc, k) {
            errs.extend(unix_id(id).iter().map(|m| invalid_int(&child(f, k), id, m)));
        }
    }
    if let Some(pm) = opt_s(sc, "procMount") {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(not_supported_str(&child(f, "procMount"), pm, &["Default", "Unmasked"]));
        }
        if host_users && pm == "Unmasked" {
            errs.push(invalid_str(&child(f, "procMount"), pm, "`hostUsers` must be false to use `Unmasked`"));
        }
    }
    errs.extend(validate_seccomp(get(sc, "seccompProfile"), &child(f, "seccompProfile")));
    if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        if privileged == Some(true) {
            errs.push(invalid_raw(
                f,
                &json_text(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        if sc
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"))
        {
            errs.push(invalid_raw(
                f,
                &json_text(sc),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    errs.extend(validate_apparmor(get(sc, "appArmorProfile"), &child(f, "appArmorProfile")));
    errs
}
