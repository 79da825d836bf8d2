//! Services: DNS-1035 names, upstream's defaults for type, ports, affinity and IP families,
//! and the checks that keep a service usable (ports present unless headless or ExternalName).

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use super::Strategy;
use crate::meta::NameRule;

/// The service strategy.
pub(crate) struct Service;

/// The one instance.
pub(crate) static SERVICE: Service = Service;

impl Strategy for Service {
    fn name_rule(&self) -> NameRule {
        NameRule::Rfc1035
    }
    fn extra_fields(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }
    fn reset_status_on_create(&self, obj: &mut Value) {
        obj["status"] = json!({ "loadBalancer": {} });
    }
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
        let ty = spec.entry("type").or_insert(json!("ClusterIP")).as_str().unwrap_or("ClusterIP").to_owned();
        spec.entry("sessionAffinity").or_insert(json!("None"));
        if spec.get("sessionAffinity") == Some(&json!("ClientIP")) {
            spec.entry("sessionAffinityConfig").or_insert(json!({ "clientIP": { "timeoutSeconds": 10800 } }));
        }
        if ty != "ExternalName" {
            spec.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
            spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
            spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            spec.entry("externalTrafficPolicy").or_insert(json!("Cluster"));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.entry("protocol").or_insert(json!("TCP"));
                if !p.contains_key("targetPort")
                    && let Some(port) = p.get("port").cloned()
                {
                    p.insert("targetPort".into(), port);
                }
            }
        }
    }
    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
        let mut causes = Vec::new();
        let ty = obj.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
        if !matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
            causes.push(Cause::not_supported("spec.type", &json!(ty), &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
        }
        let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
        let ports = obj.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
        if ports.is_empty() && ty != "ExternalName" && !headless {
            causes.push(Cause::required("spec.ports", ""));
        }
        let mut seen = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            match p.get("port").and_then(Value::as_i64) {
                Some(n) if (1..=65535).contains(&n) => {}
                Some(n) => causes.push(Cause::invalid(&format!("spec.ports[{i}].port"), &json!(n), "must be between 1 and 65535, inclusive")),
                None => causes.push(Cause::required(&format!("spec.ports[{i}].port"), "")),
            }
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if !matches!(proto, "TCP" | "UDP" | "SCTP") {
                causes.push(Cause::not_supported(&format!("spec.ports[{i}].protocol"), &json!(proto), &["SCTP", "TCP", "UDP"]));
            }
            if ports.len() > 1 && p.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(Cause::required(&format!("spec.ports[{i}].name"), ""));
            }
            let id = (p.get("port").cloned(), proto.to_owned());
            if seen.contains(&id) {
                causes.push(Cause::duplicate(&format!("spec.ports[{i}]"), &json!({ "port": p.get("port"), "protocol": proto })));
            }
            seen.push(id);
        }
        causes
    }
    fn return_deleted_object(&self) -> bool {
        true
    }
}
