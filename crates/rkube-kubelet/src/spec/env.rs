//! A container's environment as upstream's `makeEnvironmentVariables` builds it, given the objects it
//! refers to (looked up by `lookup`): service links, then `envFrom`, then `env` with `$(VAR)` expansion and
//! `valueFrom` (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret, Service,
};

use super::{ConfigError, ContainerContext, NodeResources, Warning, expand::expand, quantity};
use crate::KubeletConfig;

/// The objects a container's env refers to, as the API had them (`None`: not found).
#[derive(Clone, Debug, Default)]
pub(crate) struct EnvSources {
    /// ConfigMaps of the pod's namespace by name.
    pub(crate) config_maps: BTreeMap<String, Option<ConfigMap>>,
    /// Secrets of the pod's namespace by name.
    pub(crate) secrets: BTreeMap<String, Option<Secret>>,
    /// The services that may give link variables: those of the pod's namespace and `default/kubernetes`.
    pub(crate) services: Vec<Service>,
}

/// An ordered environment: setting an existing name replaces its value where it stands.
#[derive(Default)]
struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn docker_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The service link variables (`<SVC>_SERVICE_HOST`, `<SVC>_PORT_<port>_TCP_ADDR`, ...) of the services a
/// pod in `namespace` sees: `default/kubernetes` always, the namespace's own when `enable_links`. Services
/// without a cluster IP (headless, ExternalName) give none.
pub(crate) fn service_env(namespace: &str, enable_links: bool, services: &[Service]) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services {
        let spec = svc.spec.as_ref();
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
        if ip.is_empty() || ip == "None" || spec.and_then(|s| s.ports.as_ref()).is_none_or(|p| p.is_empty()) {
            continue;
        }
        let name = svc.metadata.name.as_deref().unwrap_or_default();
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && enable_links {
            chosen.insert(name, svc);
        }
    }
    let mut env = BTreeMap::new();
    for (name, svc) in chosen {
        let Some(spec) = svc.spec.as_ref() else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or_default();
        let prefix = docker_name(name);
        env.insert(format!("{prefix}_SERVICE_HOST"), ip.to_owned());
        let Some(first) = ports.first() else { continue };
        env.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
        for p in ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                env.insert(format!("{prefix}_SERVICE_PORT_{}", docker_name(port_name)), p.port.to_string());
            }
        }
        let host_port = |port: i32| if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let url = format!("{}://{}", proto.to_lowercase(), host_port(p.port));
            if i == 0 {
                env.insert(format!("{prefix}_PORT"), url.clone());
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            env.insert(format!("{port_prefix}_PROTO"), proto.to_lowercase());
            env.insert(format!("{port_prefix}_PORT"), p.port.to_string());
            env.insert(format!("{port_prefix}_ADDR"), ip.to_owned());
            env.insert(port_prefix, url);
        }
    }
    env
}

/// Whether `name` can be an environment variable (upstream's relaxed rule: printable ASCII but `=`).
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

fn not_found(kind: &str, name: &str) -> ConfigError {
    ConfigError::Invalid(format!("{kind} \"{name}\" not found"))
}

/// The container's environment, in order: service links not set otherwise, then `envFrom` and `env`
/// (an `env` entry replaces an `envFrom` one of the same name). `warnings` gets upstream's
/// `InvalidEnvironmentVariableNames` event for `envFrom` keys that cannot be variable names.
pub(crate) fn resolve_env(
    ctx: &ContainerContext<'_>,
    config: &KubeletConfig,
    sources: &EnvSources,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let pod = ctx.pod;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.as_ref();
    let services = service_env(ns, spec.and_then(|s| s.enable_service_links).unwrap_or(true), &sources.services);
    let mut env = Env::default();

    for from in ctx.container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let (kind, name, data): (&str, &str, Vec<(String, String)>) = if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name).and_then(Option::as_ref) {
                Some(cm) => ("configMap", &r.name, cm.data.clone().unwrap_or_default().into_iter().collect()),
                None if r.optional == Some(true) => continue,
                None => return Err(not_found("configmap", &r.name)),
            }
        } else if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name).and_then(Option::as_ref) {
                Some(s) => (
                    "secret",
                    &r.name,
                    s.data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                        .collect(),
                ),
                None if r.optional == Some(true) => continue,
                None => return Err(not_found("secret", &r.name)),
            }
        } else {
            continue;
        };
        let mut invalid = Vec::new();
        for (k, v) in data {
            let key = format!("{prefix}{k}");
            if is_env_var_name(&key) {
                env.set(key, v);
            } else {
                invalid.push(key);
            }
        }
        if !invalid.is_empty() {
            invalid.sort();
            warnings.push(Warning::new(
                "InvalidEnvironmentVariableNames",
                format!(
                    "Keys [{}] from the EnvFrom {kind} {ns}/{name} were skipped since they are considered invalid \
                     environment variable names.",
                    invalid.join(", ")
                ),
            ));
        }
    }

    for var in ctx.container.env.iter().flatten() {
        let value = var.value.as_deref().unwrap_or_default();
        let resolved = if !value.is_empty() {
            expand(value, |n| env.get(n).or_else(|| services.get(n).map(String::as_str)))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(f, pod, ctx.pod_ips, config)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(r, pod, ctx.container, ctx.node)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match sources.config_maps.get(&r.name).and_then(Option::as_ref) {
                    None if optional => continue,
                    None => return Err(not_found("configmap", &r.name)),
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(ConfigError::Invalid(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match sources.secrets.get(&r.name).and_then(Option::as_ref) {
                    None if optional => continue,
                    None => return Err(not_found("secret", &r.name)),
                    Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(ConfigError::Invalid(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), resolved);
    }

    let mut out: Vec<(String, String)> = services.into_iter().filter(|(k, _)| env.get(k).is_none()).collect();
    out.extend(env.vars);
    Ok(out)
}

/// Go's `%q` for the downward API's map format (`key="value"` lines).
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
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let open = path.find("['")?;
    let key = path[open + 2..].strip_suffix("']")?;
    Some((&path[..open], key))
}

/// The pod's IPs with those of the node's family first (upstream sorts them by the node's preference).
fn sorted_pod_ips(pod_ips: &[String], config: &KubeletConfig) -> Vec<String> {
    let mut ips = pod_ips.to_vec();
    let v6 = config.node_ip.is_ipv6();
    ips.sort_by_key(|ip| ip.contains(':') != v6);
    ips
}

/// A `fieldRef` value (upstream's `podFieldSelectorRuntimeValue`).
pub(crate) fn field_value(
    f: &ObjectFieldSelector,
    pod: &Pod,
    pod_ips: &[String],
    config: &KubeletConfig,
) -> Result<String, ConfigError> {
    if let Some(v) = f.api_version.as_deref().filter(|v| !v.is_empty() && *v != "v1") {
        return Err(ConfigError::Invalid(format!("unsupported pod version: {v}")));
    }
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = f.field_path.as_str();
    if let Some((base, key)) = split_subscript(path) {
        return match base {
            "metadata.labels" => Ok(m.labels.as_ref().and_then(|l| l.get(key)).cloned().unwrap_or_default()),
            "metadata.annotations" => Ok(m.annotations.as_ref().and_then(|a| a.get(key)).cloned().unwrap_or_default()),
            _ => Err(ConfigError::Invalid(format!("field label not supported: {path}"))),
        };
    }
    let ips = sorted_pod_ips(pod_ips, config);
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(m.labels.as_ref()),
        "metadata.annotations" => format_map(m.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => config.node_ip.to_string(),
        "status.podIP" => ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => ips.join(","),
        _ => return Err(ConfigError::Invalid(format!("field label not supported: {path}"))),
    })
}

/// The container's limits with the node's allocatable cpu, memory and ephemeral storage where it sets
/// none (upstream's `defaultPodLimitsForDownwardAPI`).
fn defaulted_limits(
    container: &Container,
    node: &NodeResources,
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    let mut limits = container.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if limits.get(name).is_none_or(|q| quantity::value(q) == 0 && quantity::milli_value(q) == 0)
            && let Some(a) = node.allocatable.get(name)
        {
            limits.insert(name.to_owned(), a.clone());
        }
    }
    limits
}

/// A `resourceFieldRef` value: the request or (defaulted) limit divided by the divisor, rounded up.
pub(crate) fn resource_value(
    r: &ResourceFieldSelector,
    pod: &Pod,
    container: &Container,
    node: &NodeResources,
) -> Result<String, ConfigError> {
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => container,
        Some(name) => {
            let spec = pod.spec.as_ref();
            let all = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
            all.clone()
                .find(|c| c.name == name)
                .ok_or_else(|| ConfigError::Invalid(format!("container {name} not found")))?
        }
    };
    let limits = defaulted_limits(target, node);
    let requests = target.resources.as_ref().and_then(|r| r.requests.as_ref());
    let (list, name) = match r.resource.split_once('.') {
        Some(("limits", name)) => (Some(&limits), name),
        Some(("requests", name)) => (requests, name),
        _ => return Err(ConfigError::Invalid(format!("unsupported container resource : {}", r.resource))),
    };
    if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !name.starts_with("hugepages-") {
        return Err(ConfigError::Invalid(format!("unsupported container resource : {}", r.resource)));
    }
    let divisor = r.divisor.as_ref().filter(|d| quantity::milli_value(d) != 0);
    let ceil_div = |a: i64, b: i64| if b <= 0 { a } else { a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0) };
    let v = if name == "cpu" {
        ceil_div(quantity::milli_of(list, name), divisor.map_or(1000, quantity::milli_value))
    } else {
        ceil_div(quantity::value_of(list, name), divisor.map_or(1, quantity::value))
    };
    Ok(v.to_string())
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
