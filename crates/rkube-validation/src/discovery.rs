//! EndpointSlices (discovery.k8s.io/v1) and Endpoints (core/v1): address type and addresses valid for it,
//! ports, topology labels, hostnames; port protocol defaults.

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::errs::{child, duplicate, idx, invalid, invalid_str, not_supported_str, required, too_many};
use crate::names::{dns1123_label, dns1123_subdomain, port_num, qualified_name};
use crate::value::{arr, int, opt_s, s, set_default, set_default_str};

/// Defaults an EndpointSlice: each port's `name` "" and `protocol` TCP.
pub fn default_endpoint_slice(obj: &mut Value) {
    if let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "name", json!(""));
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// `IsFullyQualifiedDomainName`.
fn fqdn(f: &str, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![required(f, "")];
    }
    let n = name.strip_suffix('.').unwrap_or(name);
    let msgs = dns1123_subdomain(n);
    if !msgs.is_empty() {
        return vec![invalid_str(f, n, &msgs.join(","))];
    }
    if n.split('.').count() < 2 {
        return vec![invalid_str(f, n, "should be a domain with at least two segments separated by dots")];
    }
    for label in n.split('.') {
        let msgs = dns1123_label(label);
        if !msgs.is_empty() {
            return vec![invalid_str(f, label, &msgs.join(","))];
        }
    }
    Vec::new()
}

/// Validates an EndpointSlice (`addressType` is immutable; the deprecated `IP` type is only kept on update).
pub fn validate_endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    let at = s(obj, "addressType");
    let valid: &[&str] = if old.is_some() { &["FQDN", "IP", "IPv4", "IPv6"] } else { &["FQDN", "IPv4", "IPv6"] };
    if at.is_empty() {
        errs.push(required("addressType", ""));
    } else if !valid.contains(&at) {
        errs.push(not_supported_str("addressType", at, valid));
    }
    let endpoints = arr(obj, "endpoints");
    if endpoints.len() > 1000 {
        errs.push(too_many("endpoints", endpoints.len(), 1000));
    } else {
        for (i, ep) in endpoints.iter().enumerate() {
            let p = idx("endpoints", i);
            let ap = child(&p, "addresses");
            let addrs = arr(ep, "addresses");
            if addrs.is_empty() {
                errs.push(required(&ap, "must contain at least 1 address"));
            } else if addrs.len() > 100 {
                errs.push(too_many(&ap, addrs.len(), 100));
            }
            for (j, a) in addrs.iter().enumerate() {
                let a = a.as_str().unwrap_or_default();
                let f = idx(&ap, j);
                match at {
                    "IP" => errs.extend(crate::ip::validate_ip(&f, a)),
                    "IPv4" => {
                        errs.extend(crate::ip::validate_ipv4(&f, a));
                        errs.extend(crate::ip::validate_non_special_ip(&f, a));
                    }
                    "IPv6" => {
                        errs.extend(crate::ip::validate_ipv6(&f, a));
                        errs.extend(crate::ip::validate_non_special_ip(&f, a));
                    }
                    "FQDN" => errs.extend(fqdn(&f, a)),
                    _ => {}
                }
            }
            // Upstream reports the v1 `deprecatedTopology` under its internal name.
            let topo = child(&p, "topology");
            if let Some(t) = ep.get("deprecatedTopology").and_then(Value::as_object) {
                if t.len() > 16 {
                    errs.push(too_many(&topo, t.len(), 16));
                }
                errs.extend(crate::selector::validate_labels(ep.get("deprecatedTopology"), &topo));
            }
            if let Some(h) = opt_s(ep, "hostname") {
                errs.extend(dns1123_label(h).iter().map(|m| invalid_str(&child(&p, "hostname"), h, m)));
            }
        }
    }
    let ports = arr(obj, "ports");
    if ports.len() > 100 {
        errs.push(too_many("ports", ports.len(), 100));
    } else {
        let mut names = BTreeSet::new();
        for (i, p) in ports.iter().enumerate() {
            let pp = idx("ports", i);
            let name = s(p, "name");
            if !name.is_empty() {
                errs.extend(dns1123_label(name).iter().map(|m| invalid_str(&child(&pp, "name"), name, m)));
            }
            if !names.insert(name) {
                errs.push(duplicate(&child(&pp, "name"), &json!(name)));
            }
            match opt_s(p, "protocol") {
                None => errs.push(required(&child(&pp, "protocol"), "")),
                Some("TCP" | "UDP" | "SCTP") => {}
                Some(other) => errs.push(not_supported_str(&child(&pp, "protocol"), other, &["SCTP", "TCP", "UDP"])),
            }
            if let Some(ap) = opt_s(p, "appProtocol") {
                errs.extend(qualified_name(ap).iter().map(|m| invalid_str(&child(&pp, "appProtocol"), ap, m)));
            }
        }
    }
    if let Some(old) = old
        && s(old, "addressType") != at
    {
        errs.push(invalid("addressType", obj.get("addressType").unwrap_or(&Value::Null), "field is immutable"));
    }
    errs
}

/// Defaults Endpoints: each subset port's `protocol` TCP.
pub fn default_endpoints(obj: &mut Value) {
    if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
        for ss in subsets {
            if let Some(ports) = ss.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default_str(p, "protocol", "TCP");
                }
            }
        }
    }
}

fn validate_address(a: &Value, f: &str) -> Vec<Cause> {
    let ip = s(a, "ip");
    let mut errs = crate::ip::validate_ip(&child(f, "ip"), ip);
    if let Some(h) = opt_s(a, "hostname").filter(|h| !h.is_empty()) {
        errs.extend(dns1123_label(h).iter().map(|m| invalid_str(&child(f, "hostname"), h, m)));
    }
    if let Some(n) = opt_s(a, "nodeName") {
        errs.extend(dns1123_subdomain(n).iter().map(|m| invalid_str(&child(f, "nodeName"), n, m)));
    }
    errs.extend(crate::ip::validate_non_special_ip(&child(f, "ip"), ip));
    errs
}

/// Validates Endpoints.
pub fn validate_endpoints(obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (i, ss) in arr(obj, "subsets").iter().enumerate() {
        let p = idx("subsets", i);
        let (ready, not_ready) = (arr(ss, "addresses"), arr(ss, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(required(&p, "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, a) in ready.iter().enumerate() {
            errs.extend(validate_address(a, &idx(&child(&p, "addresses"), j)));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(validate_address(a, &idx(&child(&p, "notReadyAddresses"), j)));
        }
        let ports = arr(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = idx(&child(&p, "ports"), j);
            let name = s(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(&child(&pp, "name"), ""));
            } else if !name.is_empty() {
                errs.extend(dns1123_label(name).iter().map(|m| invalid_str(&child(&pp, "name"), name, m)));
            }
            let n = int(port, "port").unwrap_or(0);
            errs.extend(port_num(n).iter().map(|m| crate::errs::invalid_int(&child(&pp, "port"), n, m)));
            match s(port, "protocol") {
                "" => errs.push(required(&child(&pp, "protocol"), "")),
                "TCP" | "UDP" | "SCTP" => {}
                other => errs.push(not_supported_str(&child(&pp, "protocol"), other, &["SCTP", "TCP", "UDP"])),
            }
            if let Some(ap) = opt_s(port, "appProtocol") {
                errs.extend(qualified_name(ap).iter().map(|m| invalid_str(&child(&pp, "appProtocol"), ap, m)));
            }
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

    #[test]
    fn slices() {
        let mut es =
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}], "ports": [{"port": 80}]});
        default_endpoint_slice(&mut es);
        assert_eq!(es["ports"], json!([{"port": 80, "name": "", "protocol": "TCP"}]));
        assert!(validate_endpoint_slice(&es, None).is_empty());
        let bad = json!({"addressType": "IPv4", "endpoints": [{"addresses": ["::1"]}, {"addresses": []}]});
        assert_eq!(
            msgs(&validate_endpoint_slice(&bad, None)),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address",
                "endpoints[0].addresses[0]: Invalid value: \"::1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
            ]
        );
        assert_eq!(
            msgs(&validate_endpoint_slice(&json!({"addressType": "Other"}), None))[0],
            "addressType: Unsupported value: \"Other\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
        );
    }

    #[test]
    fn endpoints() {
        let mut ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        default_endpoints(&mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert!(validate_endpoints(&ep, None).is_empty());
        assert_eq!(
            msgs(&validate_endpoints(&json!({"subsets": [{}]}), None)),
            vec!["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
        );
    }
}
