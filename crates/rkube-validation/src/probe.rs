//! Probes and lifecycle hooks: exactly one handler, port numbers or names, timings, and the rules that differ
//! between liveness, readiness and startup probes.

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{child, forbidden, invalid, invalid_int, invalid_str, not_supported_str, required};
use crate::intstr::IntOrString;
use crate::names::{http_header_name, port_name, port_num};
use crate::value::{arr, get, int, s};

/// `ValidatePortNumOrName` for probe and service target ports.
pub(crate) fn validate_port_num_or_name(v: Option<&Value>, f: &str) -> Vec<Cause> {
    match v.and_then(IntOrString::from_value) {
        Some(IntOrString::Int(n)) => port_num(n).iter().map(|m| invalid_int(f, n, m)).collect(),
        Some(IntOrString::Str(name)) => port_name(&name).iter().map(|m| invalid_str(f, &name, m)).collect(),
        // A missing port is the int 0 in Go.
        None => port_num(0).iter().map(|m| invalid_int(f, 0, m)).collect(),
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (lifecycle).
fn validate_handler(h: &Value, kinds: &[&str], grace: Option<i64>, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut n = 0;
    for kind in kinds {
        let Some(a) = get(h, kind) else { continue };
        let p = child(f, kind);
        if n > 0 {
            errs.push(forbidden(&p, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match *kind {
            "exec" if arr(a, "command").is_empty() => {
                errs.push(required(&child(&p, "command"), ""));
            }
            "httpGet" => {
                if s(a, "path").is_empty() {
                    errs.push(required(&child(&p, "path"), ""));
                }
                errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port")));
                let scheme = s(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported_str(&child(&p, "scheme"), scheme, &["HTTP", "HTTPS"]));
                }
                for hd in arr(a, "httpHeaders") {
                    let name = s(hd, "name");
                    errs.extend(http_header_name(name).iter().map(|m| invalid_str(&child(&p, "httpHeaders"), name, m)));
                }
            }
            "tcpSocket" => errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port"))),
            "grpc" => {
                let port = int(a, "port").unwrap_or(0);
                errs.extend(port_num(port).iter().map(|m| invalid_int(&child(&p, "port"), port, m)));
            }
            "sleep" => {
                let secs = int(a, "seconds").unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(invalid_int(
                        &p,
                        secs,
                        &format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                    ));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(required(f, "must specify a handler type"));
    }
    errs
}

fn validate_probe(p: &Value, grace: Option<i64>, f: &str) -> Vec<Cause> {
    let mut errs = validate_handler(p, &["exec", "httpGet", "tcpSocket", "grpc"], grace, f);
    for k in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        let v = int(p, k).unwrap_or(0);
        if v < 0 {
            errs.push(invalid_int(&child(f, k), v, "must be greater than or equal to 0"));
        }
    }
    if let Some(t) = int(p, "terminationGracePeriodSeconds")
        && t <= 0
    {
        errs.push(invalid_int(&child(f, "terminationGracePeriodSeconds"), t, "must be greater than 0"));
    }
    errs
}

/// Probes and lifecycle hooks of a regular (or restartable init) container.
pub(crate) fn validate_probes_and_lifecycle(c: &Value, grace: Option<i64>, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if let Some(l) = get(c, "lifecycle") {
        for h in ["postStart", "preStop"] {
            if let Some(hv) = get(l, h) {
                errs.extend(validate_handler(
                    hv,
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                    grace,
                    &child(&child(f, "lifecycle"), h),
                ));
            }
        }
    }
    for (k, must_one) in [("livenessProbe", true), ("readinessProbe", false), ("startupProbe", true)] {
        let Some(p) = get(c, k) else { continue };
        let pf = child(f, k);
        errs.extend(validate_probe(p, grace, &pf));
        if must_one {
            let st = int(p, "successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(invalid_int(&child(&pf, "successThreshold"), st, "must be 1"));
            }
        } else if let Some(t) = p.get("terminationGracePeriodSeconds").filter(|v| !v.is_null()) {
            errs.push(invalid(&child(&pf, "terminationGracePeriodSeconds"), t, "must not be set for readinessProbes"));
        }
    }
    errs
}
