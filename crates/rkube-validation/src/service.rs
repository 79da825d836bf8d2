//! Services: `SetDefaults_Service` plus the registry's clusterIP/ipFamily normalization (single-stack IPv4
//! cluster), `ValidateService`, the update rules for allocated fields, and the NodePort range check the
//! allocator makes.

use std::collections::BTreeSet;

use rkube_apimachinery::Cause;
use serde_json::{Map, Value, json};

use crate::Options;
use crate::errs::{
    child, duplicate, duplicate_raw, forbidden, go_strings, idx, invalid, invalid_int, invalid_raw, invalid_str,
    not_supported_str, required,
};
use crate::intstr::IntOrString;
use crate::names::{dns1123_label, dns1123_subdomain, port_num, qualified_name};
use crate::podspec::same;
use crate::probe::validate_port_num_or_name;
use crate::value::{arr, get, int, opt_s, s, set_default, set_default_str, str_list};

fn externally_accessible(spec: &Value) -> bool {
    let t = s(spec, "type");
    t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn needs_cluster_ip(spec: &Value) -> bool {
    s(spec, "type") != "ExternalName"
}

fn needs_node_port(spec: &Value) -> bool {
    matches!(s(spec, "type"), "NodePort" | "LoadBalancer")
}

fn needs_health_check(spec: &Value) -> bool {
    s(spec, "type") == "LoadBalancer" && s(spec, "externalTrafficPolicy") == "Local"
}

fn is_headless(spec: &Value) -> bool {
    let ips = str_list(spec, "clusterIPs");
    ips.len() == 1 && ips[0] == "None"
}

/// `SetDefaults_Service`, then what the registry does before validation on create: `clusterIPs` from
/// `clusterIP`, and `ipFamilyPolicy`/`ipFamilies` for a single-stack IPv4 cluster. ClusterIP and NodePort
/// allocation stay with the registry.
pub fn default_service(obj: &mut Value) {
    let Some(spec) = crate::value::child_mut(obj, "spec") else { return };
    set_default_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert("sessionAffinityConfig".into(), json!({"clientIP": {"timeoutSeconds": 10800}}));
            }
        }
        _ => {}
    }
    set_default_str(spec, "type", "ClusterIP");
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default_str(p, "protocol", "TCP");
            let target_unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(v) => matches!(IntOrString::from_value(v), Some(IntOrString::Int(0))) || v.as_str() == Some(""),
            };
            if target_unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    let view = Value::Object(spec.clone());
    if externally_accessible(&view) {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    let t = s(&view, "type").to_owned();
    if matches!(t.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if t == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    normalize_cluster_ips(spec, None);
    init_ip_families(spec, None);
    if t == "LoadBalancer"
        && let Some(ingress) = obj.pointer_mut("/status/loadBalancer/ingress").and_then(Value::as_array_mut)
    {
        for ing in ingress.iter_mut().filter_map(Value::as_object_mut) {
            if ing.get("ip").and_then(Value::as_str).is_some_and(|ip| !ip.is_empty()) {
                set_default(ing, "ipMode", json!("VIP"));
            }
        }
    }
}

fn ips(spec: &Map<String, Value>) -> Vec<String> {
    spec.get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Upstream's `NormalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step for old and new clients.
fn normalize_cluster_ips(spec: &mut Map<String, Value>, old: Option<&Value>) {
    let cip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(old) = old else {
        if !cip.is_empty() && ips(spec).is_empty() {
            spec.insert("clusterIPs".into(), json!([cip]));
        }
        return;
    };
    let old_cip = s(old, "clusterIP");
    let old_ips: Vec<String> = str_list(old, "clusterIPs").into_iter().map(str::to_owned).collect();
    if !old_ips.is_empty() && ips(spec).is_empty() && old_cip == cip {
        spec.insert("clusterIPs".into(), json!(old_ips));
    }
    if old_cip != cip {
        let same_ips = ips(spec) == old_ips;
        if !old_cip.is_empty() && cip.is_empty() {
            if same_ips {
                spec.remove("clusterIPs");
            }
        } else if same_ips {
            spec.insert("clusterIPs".into(), json!([cip]));
        }
    }
}

/// The registry's `initIPFamilyFields` for a single-stack IPv4 cluster.
fn init_ip_families(spec: &mut Map<String, Value>, old: Option<&Value>) {
    let view = Value::Object(spec.clone());
    if s(&view, "type") == "ExternalName" {
        return;
    }
    let headless_selectorless =
        s(&view, "clusterIP") == "None" && crate::value::str_map(view.get("selector")).is_empty();
    if get(&view, "ipFamilyPolicy").is_none() {
        let policy = match old.and_then(|o| opt_s(o, "ipFamilyPolicy")) {
            Some(p) => p.to_owned(),
            None if headless_selectorless => "RequireDualStack".to_owned(),
            None => "SingleStack".to_owned(),
        };
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    let mut families: Vec<String> = str_list(&view, "ipFamilies").into_iter().map(str::to_owned).collect();
    for (i, ip) in ips(spec).iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() && crate::ip::parse_ip(ip).is_some() {
            families.push(if crate::ip::is_ipv6(ip) { "IPv6".into() } else { "IPv4".into() });
        }
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    if headless_selectorless
        && families.len() < 2
        && spec.get("ipFamilyPolicy").and_then(Value::as_str) != Some("SingleStack")
    {
        let alt = if families[0] == "IPv4" { "IPv6" } else { "IPv4" };
        families.push(alt.into());
    }
    spec.insert("ipFamilies".into(), json!(families));
}

/// What the registry does to a service update before validation: carries allocated values (clusterIPs,
/// NodePorts, health-check port, ipFamilyPolicy) over from `old` when the new object omits them, drops fields
/// the new type no longer uses, and re-syncs `clusterIP`/`clusterIPs`. Call it before [`default_service`].
pub fn prepare_service_update(new: &mut Value, old: &Value) {
    let empty = json!({});
    let old_spec = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty).clone();
    let Some(spec) = crate::value::child_mut(new, "spec") else { return };
    let view = Value::Object(spec.clone());
    // patchAllocatedValues
    if needs_cluster_ip(&old_spec) && needs_cluster_ip(&view) {
        if s(&view, "clusterIP").is_empty() && !s(&old_spec, "clusterIP").is_empty() {
            spec.insert("clusterIP".into(), old_spec["clusterIP"].clone());
        }
        if ips(spec).is_empty() && !arr(&old_spec, "clusterIPs").is_empty() {
            spec.insert("clusterIPs".into(), old_spec["clusterIPs"].clone());
        }
    }
    if needs_node_port(&old_spec) && needs_node_port(&view) {
        let used = |sp: &Value| -> BTreeSet<i64> {
            arr(sp, "ports").iter().filter_map(|p| int(p, "nodePort")).filter(|n| *n != 0).collect()
        };
        let in_use: BTreeSet<i64> = used(&old_spec).intersection(&used(&view)).copied().collect();
        let by_name: Vec<(String, i64)> = arr(&old_spec, "ports")
            .iter()
            .map(|p| (s(p, "name").to_owned(), int(p, "nodePort").unwrap_or(0)))
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(crate::value::as_int).unwrap_or(0) != 0 {
                    continue;
                }
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                if let Some((_, np)) = by_name.iter().find(|(n, _)| n == name)
                    && *np != 0
                    && !in_use.contains(np)
                {
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
    if needs_health_check(&old_spec)
        && needs_health_check(&view)
        && int(&view, "healthCheckNodePort").unwrap_or(0) == 0
        && let Some(hc) = old_spec.get("healthCheckNodePort")
    {
        spec.insert("healthCheckNodePort".into(), hc.clone());
    }
    // dropTypeDependentFields
    let view = Value::Object(spec.clone());
    if needs_cluster_ip(&old_spec) && !needs_cluster_ip(&view) {
        if same(view.get("clusterIPs"), old_spec.get("clusterIPs")) {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        for k in ["ipFamilies", "ipFamilyPolicy"] {
            if same(view.get(k), old_spec.get(k)) {
                spec.remove(k);
            }
        }
    }
    let node_ports =
        |sp: &Value| -> Vec<i64> { arr(sp, "ports").iter().map(|p| int(p, "nodePort").unwrap_or(0)).collect() };
    if needs_node_port(&old_spec)
        && !needs_node_port(&view)
        && node_ports(&old_spec) == node_ports(&view)
        && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
    if needs_health_check(&old_spec)
        && !needs_health_check(&view)
        && same(view.get("healthCheckNodePort"), old_spec.get("healthCheckNodePort"))
    {
        spec.remove("healthCheckNodePort");
    }
    if s(&old_spec, "type") == "LoadBalancer" && s(&view, "type") != "LoadBalancer" {
        if get(&view, "allocateLoadBalancerNodePorts").is_some()
            && same(view.get("allocateLoadBalancerNodePorts"), old_spec.get("allocateLoadBalancerNodePorts"))
        {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if same(view.get("loadBalancerClass"), old_spec.get("loadBalancerClass")) {
            spec.remove("loadBalancerClass");
        }
    }
    if externally_accessible(&old_spec)
        && !externally_accessible(&view)
        && same(view.get("externalTrafficPolicy"), old_spec.get("externalTrafficPolicy"))
    {
        spec.remove("externalTrafficPolicy");
    }
    normalize_cluster_ips(spec, Some(&old_spec));
    if get(&Value::Object(spec.clone()), "ipFamilyPolicy").is_none()
        && let Some(p) = old_spec.get("ipFamilyPolicy").filter(|p| !p.is_null())
    {
        spec.insert("ipFamilyPolicy".into(), p.clone());
    }
    if s(&Value::Object(spec.clone()), "type") != "LoadBalancer"
        && let Some(st) = new.get_mut("status").and_then(Value::as_object_mut)
    {
        st.insert("loadBalancer".into(), json!({}));
    }
}

/// `core.ServicePort{...}` as upstream's `%#v` prints the (protocol, port) key of a duplicate.
fn go_port_key(protocol: &str, port: i64) -> String {
    format!(
        "core.ServicePort{{Name:\"\", Protocol:{protocol:?}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )
}

fn validate_cluster_ips_related(spec: &Value) -> Vec<Cause> {
    if s(spec, "type") == "ExternalName" {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let cip = s(spec, "clusterIP");
    let cips = str_list(spec, "clusterIPs");
    let raw = go_strings(&cips);
    if !cip.is_empty() {
        if cips.is_empty() {
            errs.push(required("spec.clusterIPs", ""));
        } else if cips[0] != cip {
            errs.push(invalid_raw("spec.clusterIPs", &raw, "first value must match `clusterIP`"));
        }
    } else if !cips.is_empty() {
        errs.push(invalid_raw("spec.clusterIPs", &raw, "must be empty when `clusterIP` is not specified"));
    }
    let mut seen = BTreeSet::new();
    for (i, fam) in str_list(spec, "ipFamilies").iter().enumerate() {
        if *fam != "IPv4" && *fam != "IPv6" {
            errs.push(not_supported_str(&idx("spec.ipFamilies", i), fam, &["IPv4", "IPv6"]));
        }
        if !seen.insert(*fam) {
            errs.push(duplicate(&idx("spec.ipFamilies", i), &json!(fam)));
        }
    }
    if let Some(p) = opt_s(spec, "ipFamilyPolicy")
        && !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&p)
    {
        errs.push(not_supported_str("spec.ipFamilyPolicy", p, &["PreferDualStack", "RequireDualStack", "SingleStack"]));
    }
    let mut bad_ip = false;
    for (i, ip) in cips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if cips.len() > 1 {
                bad_ip = true;
                errs.push(invalid_raw("spec.clusterIPs", &raw, "'None' must be the first and only value"));
            }
            continue;
        }
        let e = crate::ip::validate_ip(&idx("spec.clusterIPs", i), ip);
        bad_ip |= !e.is_empty();
        errs.extend(e);
    }
    if cips.len() > 2 {
        errs.push(invalid_raw("spec.clusterIPs", &raw, "may only hold up to 2 values"));
    }
    if bad_ip {
        return errs;
    }
    if cips.len() > 1 && crate::ip::is_ipv6(cips[0]) == crate::ip::is_ipv6(cips[1]) {
        errs.push(invalid_raw("spec.clusterIPs", &raw, "may specify no more than one IP for each IP family"));
    }
    if !is_headless(spec) {
        let fams = str_list(spec, "ipFamilies");
        for (i, ip) in cips.iter().enumerate().take(fams.len()) {
            let v6 = crate::ip::is_ipv6(ip);
            if fams[i] == "IPv4" && v6 {
                errs.push(invalid_str(
                    &idx("spec.clusterIPs", i),
                    ip,
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fams[i] == "IPv6" && !v6 {
                errs.push(invalid_str(
                    &idx("spec.clusterIPs", i),
                    ip,
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn validate_spec(spec: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let t = s(spec, "type");
    let headless = is_headless(spec);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && t != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match t {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(invalid_str("spec.clusterIPs[0]", "None", &format!("may not be set to 'None' for {t} services")));
        }
        "ExternalName" => {
            if !arr(spec, "clusterIPs").is_empty() {
                errs.push(forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
            }
            let cname = s(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            } else {
                errs.extend(dns1123_subdomain(cname).iter().map(|m| invalid_str("spec.externalName", cname, m)));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = idx("spec.ports", i);
        let name = s(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&child(&pp, "name"), ""));
        } else if !name.is_empty() {
            errs.extend(dns1123_label(name).iter().map(|m| invalid_str(&child(&pp, "name"), name, m)));
            if !names.insert(name) {
                errs.push(duplicate(&child(&pp, "name"), &json!(name)));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        errs.extend(port_num(port).iter().map(|m| invalid_int(&child(&pp, "port"), port, m)));
        match s(p, "protocol") {
            "" => errs.push(required(&child(&pp, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(not_supported_str(&child(&pp, "protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
        errs.extend(validate_port_num_or_name(p.get("targetPort"), &child(&pp, "targetPort")));
        if let Some(ap) = opt_s(p, "appProtocol") {
            errs.extend(qualified_name(ap).iter().map(|m| invalid_str(&child(&pp, "appProtocol"), ap, m)));
        }
    }
    if get(spec, "selector").is_some() {
        errs.extend(crate::selector::validate_labels(get(spec, "selector"), "spec.selector"));
    }
    match s(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let cfg = get(spec, "sessionAffinityConfig");
            let client = cfg.and_then(|c| get(c, "clientIP"));
            let timeout = client.and_then(|c| get(c, "timeoutSeconds"));
            if cfg.is_none() {
                errs.push(required("spec.sessionAffinityConfig", "when session affinity type is ClientIP"));
            } else if client.is_none() {
                errs.push(required("spec.sessionAffinityConfig.clientIP", "when session affinity type is ClientIP"));
            } else if timeout.is_none() {
                errs.push(required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "when session affinity type is ClientIP",
                ));
            } else if let Some(t) = timeout.and_then(crate::value::as_int)
                && (t <= 0 || t > 86400)
            {
                errs.push(invalid_int(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
            }
        }
        other => errs.push(not_supported_str("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }
    errs.extend(validate_cluster_ips_related(spec));
    for (i, ip) in str_list(spec, "externalIPs").iter().enumerate() {
        let p = idx("spec.externalIPs", i);
        let e = crate::ip::validate_ip(&p, ip);
        if e.is_empty() {
            errs.extend(crate::ip::validate_non_special_ip(&p, ip));
        } else {
            errs.extend(e);
        }
    }
    match t {
        "" => errs.push(required("spec.type", "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => {
            errs.push(not_supported_str("spec.type", other, &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
        }
    }
    if t == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if int(p, "nodePort").unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &child(&idx("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((s(p, "protocol"), np)) {
            errs.push(duplicate(&child(&idx("spec.ports", i), "nodePort"), &json!(np)));
        }
    }
    let mut keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let (proto, port) = (s(p, "protocol"), int(p, "port").unwrap_or(0));
        if !keys.insert((proto, port)) {
            errs.push(duplicate_raw(&idx("spec.ports", i), &go_port_key(proto, port)));
        }
    }
    let ranges = str_list(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        if t != "LoadBalancer" {
            errs.push(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(crate::ip::validate_cidr(&idx("spec.LoadBalancerSourceRanges", i), r.trim()));
        }
    }
    let alloc = get(spec, "allocateLoadBalancerNodePorts");
    if alloc.is_some() && t != "LoadBalancer" {
        errs.push(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
    }
    if t == "LoadBalancer" && alloc.is_none() {
        // Upstream reports this one without the `spec.` prefix.
        errs.push(required("allocateLoadBalancerNodePorts", ""));
    }
    if let Some(class) = opt_s(spec, "loadBalancerClass") {
        if t == "LoadBalancer" {
            errs.extend(qualified_name(class).iter().map(|m| invalid_str("spec.loadBalancerClass", class, m)));
        } else {
            errs.push(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"));
        }
    }
    let etp = s(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(invalid_str(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(required("spec.externalTrafficPolicy", ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(not_supported_str("spec.externalTrafficPolicy", etp, &["Cluster", "Local"]));
    }
    let hc = int(spec, "healthCheckNodePort").unwrap_or(0);
    if !needs_health_check(spec) && hc != 0 {
        errs.push(invalid_int(
            "spec.healthCheckNodePort",
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    } else if needs_health_check(spec) && hc != 0 {
        errs.extend(port_num(hc).iter().map(|m| invalid_int("spec.healthCheckNodePort", hc, m)));
    }
    match opt_s(spec, "internalTrafficPolicy") {
        None if matches!(t, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(not_supported_str("spec.internalTrafficPolicy", p, &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(td) = opt_s(spec, "trafficDistribution")
        && td != "PreferClose"
    {
        errs.push(not_supported_str("spec.trafficDistribution", td, &["PreferClose"]));
    }
    errs
}

fn validate_update(spec: &Value, old: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let (t, ot) = (s(spec, "type"), s(old, "type"));
    let new_ips = str_list(spec, "clusterIPs");
    let old_ips = str_list(old, "clusterIPs");
    let raw = go_strings(&new_ips);
    if t != "ExternalName" && ot != "ExternalName" && !(is_headless(spec) && is_headless(old)) {
        if old_ips.len() == new_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if *ip != new_ips[i] {
                    errs.push(invalid_raw(&idx("spec.clusterIPs", i), &raw, "may not change once set"));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if new_ips.is_empty() {
                errs.push(invalid_raw("spec.clusterIPs[0]", &raw, "primary clusterIP can not be unset"));
            }
            if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(invalid_raw("spec.clusterIPs[0]", &raw, "may not change once set"));
            }
            if new_ips.len() == 1 && opt_s(spec, "ipFamilyPolicy") != Some("SingleStack") {
                errs.push(invalid(
                    "spec.ipFamilyPolicy",
                    spec.get("ipFamilyPolicy").unwrap_or(&Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(invalid_raw("spec.clusterIPs[0]", &raw, "may not change once set"));
        }
    }
    if t != "ExternalName" && ot != "ExternalName" && is_headless(spec) == is_headless(old) && !is_headless(spec) {
        let (nf, of) = (str_list(spec, "ipFamilies"), str_list(old, "ipFamilies"));
        let nraw = crate::errs::go_strings(&nf).replace("[]string", "[]core.IPFamily");
        if nf.len() == of.len() {
            if nf != of {
                errs.push(invalid_raw("spec.ipFamilies[0]", &nraw, "may not change once set"));
            }
        } else if !nf.is_empty() && !of.is_empty() && nf[0] != of[0] {
            errs.push(invalid_raw("spec.ipFamilies[0]", &go_strings(&new_ips), "may not change once set"));
        }
    }
    if t == "LoadBalancer" && ot == "LoadBalancer" && !same(spec.get("loadBalancerClass"), old.get("loadBalancerClass"))
    {
        errs.push(invalid(
            "spec.loadBalancerClass",
            spec.get("loadBalancerClass").unwrap_or(&Value::Null),
            "may not change once set",
        ));
    }
    if needs_health_check(old)
        && needs_health_check(spec)
        && int(spec, "healthCheckNodePort") != int(old, "healthCheckNodePort")
    {
        errs.push(forbidden("spec.healthCheckNodePort", "field is immutable"));
    }
    errs
}

/// NodePorts the user asked for must lie in the cluster's range (the allocator's check).
fn validate_node_port_range(spec: &Value, old: Option<&Value>, range: (u16, u16)) -> Vec<Cause> {
    if !needs_node_port(spec) {
        return Vec::new();
    }
    let old_ports: BTreeSet<i64> =
        old.map(|o| arr(o, "ports").iter().filter_map(|p| int(p, "nodePort")).collect()).unwrap_or_default();
    let mut errs = Vec::new();
    for (i, p) in arr(spec, "ports").iter().enumerate() {
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 && !old_ports.contains(&np) && !(i64::from(range.0)..=i64::from(range.1)).contains(&np) {
            errs.push(invalid_int(
                &child(&idx("spec.ports", i), "nodePort"),
                np,
                &format!(
                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                    range.0, range.1
                ),
            ));
        }
    }
    errs
}

/// Validates a service with default [`Options`].
pub fn validate_service(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate_service_with(obj, old, &Options::default())
}

/// Validates a service on create or update, including the NodePort range of `options`.
pub fn validate_service_with(obj: &Value, old: Option<&Value>, options: &Options) -> Vec<Cause> {
    let empty = json!({});
    let spec = obj.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let old_spec = old.map(|o| o.get("spec").filter(|s| s.is_object()).unwrap_or(&empty));
    let mut errs = Vec::new();
    if let Some(o) = old_spec {
        errs.extend(validate_update(spec, o));
    }
    errs.extend(validate_spec(spec));
    errs.extend(validate_node_port_range(spec, old_spec, options.node_port_range));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(c: &[Cause]) -> Vec<String> {
        c.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
    }

    #[test]
    fn defaults_match_upstream() {
        let mut svc =
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        default_service(&mut svc);
        assert_eq!(
            svc["spec"],
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})
        );
        assert!(validate_service(&svc, None).is_empty(), "{:?}", validate_service(&svc, None));
        let mut np = json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": "http"}], "clusterIP": "10.0.0.5"}});
        default_service(&mut np);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10800}}));
        assert_eq!(np["spec"]["clusterIPs"], json!(["10.0.0.5"]));
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        default_service(&mut headless);
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert!(validate_service(&headless, None).is_empty(), "{:?}", validate_service(&headless, None));
    }

    #[test]
    fn port_errors() {
        let mut svc = json!({"spec": {"type": "Bogus", "ports": [{"port": 80}, {"port": 80, "name": "b"}, {"port": 0, "name": "b", "protocol": "HTTP"}]}});
        default_service(&mut svc);
        let m = msgs(&validate_service(&svc, None));
        for want in [
            "spec.ports[0].name: Required value",
            "spec.ports[2].name: Duplicate value: \"b\"",
            "spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[2].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.type: Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
        ] {
            assert!(m.contains(&want.to_owned()), "missing {want}\nin {m:#?}");
        }
        let mut none = json!({"spec": {}});
        default_service(&mut none);
        assert_eq!(msgs(&validate_service(&none, None)), vec!["spec.ports: Required value"]);
    }

    #[test]
    fn node_port_range_and_immutability() {
        let mut svc =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}], "clusterIP": "10.0.0.5"}});
        default_service(&mut svc);
        assert_eq!(
            msgs(&validate_service(&svc, None)),
            vec![
                "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ]
        );
        let opts = Options { node_port_range: (1, 1000), ..Options::default() };
        assert!(validate_service_with(&svc, None, &opts).is_empty());
        let mut old = json!({"spec": {"ports": [{"port": 80}], "clusterIP": "10.0.0.5"}});
        default_service(&mut old);
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.0.0.6");
        prepare_service_update(&mut new, &old);
        default_service(&mut new);
        assert_eq!(
            msgs(&validate_service(&new, Some(&old))),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.6\"}: may not change once set"]
        );
        let mut omitted = old.clone();
        omitted["spec"].as_object_mut().map(|m| {
            m.remove("clusterIP");
            m.remove("clusterIPs")
        });
        prepare_service_update(&mut omitted, &old);
        default_service(&mut omitted);
        assert!(validate_service(&omitted, Some(&old)).is_empty());
        assert_eq!(omitted["spec"]["clusterIP"], "10.0.0.5");
    }
}
