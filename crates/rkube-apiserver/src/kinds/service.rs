//! Services: DNS-1035 names, upstream's defaults for type, ports, affinity and IP families,
//! and the checks that keep a service usable (ports present unless headless or ExternalName).

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
    fn return_deleted_object(&self) -> bool {
        true
    }
}
