//! Downward API values (pkg/fieldpath, pkg/api/v1/resource): pod fields by `fieldPath` and container
//! resources by `resource`/`divisor`, as files (downwardAPI, projected) and for `subPathExpr` expansion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `field_path` of `pod` (`metadata.labels` as upstream's `FormatMap`).
pub(crate) fn field_value(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((kind, key)) = subscript(field_path) {
        let map = if kind == "metadata.labels" { &meta.labels } else { &meta.annotations };
        return Ok(map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let v = match field_path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "metadata.labels" => Some(format_map(meta.labels.as_ref())),
        "metadata.annotations" => Some(format_map(meta.annotations.as_ref())),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.hostIPs" => status.map(|s| ips(s.host_ips.iter().flatten().map(|i| i.ip.as_str()))),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.podIPs" => status.map(|s| ips(s.pod_ips.iter().flatten().map(|i| i.ip.as_str()))),
        _ => return Err(format!("unsupported fieldPath: {field_path}")),
    };
    Ok(v.unwrap_or_default())
}

fn ips<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(",")
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn subscript(path: &str) -> Option<(&str, &str)> {
    let (kind, rest) = path.split_once('[')?;
    let key = rest.strip_suffix(']')?.strip_prefix('\'')?.strip_suffix('\'')?;
    matches!(kind, "metadata.labels" | "metadata.annotations").then_some((kind, key))
}

/// `key="value"` lines sorted by key, values quoted as Go's `%q`.
pub(crate) fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter().flatten().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a container resource (`limits.cpu`, `requests.memory`, ...) divided by `divisor`, rounded
/// up as upstream; a missing limit falls back to the node's allocatable.
pub(crate) fn resource_value(
    pod: &Pod,
    sel: &ResourceFieldSelector,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> Result<String, String> {
    let name = sel.container_name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let container = spec
        .into_iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .find(|c| c.name == name)
        .ok_or_else(|| format!("container {name} not found"))?;
    let res = container.resources.as_ref();
    let (which, resource) = sel.resource.split_once('.').unwrap_or(("", sel.resource.as_str()));
    let list = match which {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => None,
    };
    if !matches!(resource, "cpu" | "memory" | "ephemeral-storage") || which.is_empty() {
        return Err(format!("unsupported container resource : {}", sel.resource));
    }
    let mut q = list.and_then(|l| l.get(resource));
    if q.is_none() && which == "limits" {
        q = allocatable.and_then(|a| a.get(resource));
    }
    let value = match q {
        Some(q) => parse_quantity(&q.0).ok_or_else(|| format!("invalid quantity {:?}", q.0))?,
        None => 0.0,
    };
    let divisor = match &sel.divisor {
        Some(d) => parse_quantity(&d.0).ok_or_else(|| format!("invalid divisor {:?}", d.0))?,
        None => 1.0,
    };
    if divisor <= 0.0 {
        return Err(format!("invalid divisor {:?}", sel.divisor.as_ref().map(|d| d.0.as_str()).unwrap_or("0")));
    }
    // CPU in millicores, memory and storage in whole bytes, both rounded up before dividing (MilliValue/Value).
    let v = if resource == "cpu" {
        ((value * 1000.0).ceil() / (divisor * 1000.0).ceil()).ceil()
    } else {
        (value.ceil() / divisor.ceil()).ceil()
    };
    Ok(format!("{}", v as i64))
}

/// A resource quantity (`500m`, `1.5Gi`, `2e3`, `128974848`) as a number of units.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p", "namespace": "ns", "uid": "u-1",
                "labels": { "b": "two \"q\"", "a": "1" }, "annotations": { "x": "line\nnext" } },
            "spec": { "nodeName": "n1", "serviceAccountName": "sa", "containers": [{ "name": "c",
                "resources": { "limits": { "memory": "64Mi" }, "requests": { "cpu": "250m", "memory": "1Gi" } } }] },
            "status": { "podIP": "10.0.0.5", "podIPs": [{ "ip": "10.0.0.5" }, { "ip": "fd00::5" }] },
        }))
        .unwrap()
    }

    #[test]
    fn fields() {
        let p = pod();
        assert_eq!(field_value(&p, "metadata.name").unwrap(), "p");
        assert_eq!(field_value(&p, "metadata.namespace").unwrap(), "ns");
        assert_eq!(field_value(&p, "metadata.uid").unwrap(), "u-1");
        assert_eq!(field_value(&p, "metadata.labels").unwrap(), "a=\"1\"\nb=\"two \\\"q\\\"\"");
        assert_eq!(field_value(&p, "metadata.annotations").unwrap(), "x=\"line\\nnext\"");
        assert_eq!(field_value(&p, "metadata.labels['b']").unwrap(), "two \"q\"");
        assert_eq!(field_value(&p, "metadata.labels['none']").unwrap(), "");
        assert_eq!(field_value(&p, "spec.nodeName").unwrap(), "n1");
        assert_eq!(field_value(&p, "status.podIPs").unwrap(), "10.0.0.5,fd00::5");
        assert_eq!(field_value(&p, "spec.bogus").unwrap_err(), "unsupported fieldPath: spec.bogus");
    }

    #[test]
    fn resources_with_divisors_and_allocatable() {
        let p = pod();
        let sel = |r: &str, d: Option<&str>| ResourceFieldSelector {
            container_name: Some("c".into()),
            resource: r.into(),
            divisor: d.map(|d| Quantity(d.into())),
        };
        let alloc: BTreeMap<String, Quantity> = [("cpu".to_string(), Quantity("3".into()))].into();
        assert_eq!(resource_value(&p, &sel("requests.cpu", None), None).unwrap(), "1");
        assert_eq!(resource_value(&p, &sel("requests.cpu", Some("1m")), None).unwrap(), "250");
        assert_eq!(resource_value(&p, &sel("limits.memory", None), None).unwrap(), "67108864");
        assert_eq!(resource_value(&p, &sel("limits.memory", Some("1Mi")), None).unwrap(), "64");
        assert_eq!(resource_value(&p, &sel("requests.memory", Some("1Gi")), None).unwrap(), "1");
        assert_eq!(resource_value(&p, &sel("limits.cpu", None), Some(&alloc)).unwrap(), "3");
        assert_eq!(resource_value(&p, &sel("requests.ephemeral-storage", None), None).unwrap(), "0");
        assert_eq!(
            resource_value(&p, &sel("limits.gpu", None), None).unwrap_err(),
            "unsupported container resource : limits.gpu"
        );
        let mut other = sel("limits.cpu", None);
        other.container_name = Some("zz".into());
        assert_eq!(resource_value(&p, &other, None).unwrap_err(), "container zz not found");
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("1.5G"), Some(1.5e9));
        assert_eq!(parse_quantity("x"), None);
    }
}
