//! Leases (HOLDER), priority classes (VALUE, GLOBAL-DEFAULT, PREEMPTIONPOLICY) and disruption budgets.

use serde_json::json;

use crate::Printer;
use crate::column;
use crate::descriptions::{LEASE_HOLDER, PC_DEFAULT, PC_PREEMPT, PC_VALUE};
use crate::format::int_or_string;
use crate::value::{age, bool_at, int_at, name, opt_str, str_at};

/// `leases`.
pub(crate) const LEASES: Printer = Printer {
    columns: || vec![column::name(), column::string("Holder", LEASE_HOLDER), column::age()],
    cells: |o, now| vec![name(o), json!(str_at(o, "/spec/holderIdentity")), age(o, now)],
};

/// `priorityclasses`: PREEMPTIONPOLICY comes after AGE, as upstream appends it.
pub(crate) const PRIORITY_CLASSES: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::integer("Value", PC_VALUE),
            column::boolean("Global-Default", PC_DEFAULT),
            column::age(),
            column::string("PreemptionPolicy", PC_PREEMPT),
        ]
    },
    cells: |o, now| {
        vec![
            name(o),
            json!(int_at(o, "/value")),
            json!(bool_at(o, "/globalDefault")),
            age(o, now),
            // Defaulting sets PreemptLowerPriority.
            json!(opt_str(o, "/preemptionPolicy").unwrap_or("PreemptLowerPriority")),
        ]
    },
};

/// `poddisruptionbudgets`: `N/A` for the bound not set.
pub(crate) const POD_DISRUPTION_BUDGETS: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Min Available", "The minimum number of pods that must be available."),
            column::string("Max Unavailable", "The maximum number of pods that may be unavailable."),
            column::integer("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time."),
            column::age(),
        ]
    },
    cells: |o, now| {
        let bound = |ptr: &str| o.pointer(ptr).filter(|v| !v.is_null()).map_or_else(|| "N/A".to_owned(), int_or_string);
        vec![
            name(o),
            json!(bound("/spec/minAvailable")),
            json!(bound("/spec/maxUnavailable")),
            json!(int_at(o, "/status/disruptionsAllowed")),
            age(o, now),
        ]
    },
};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn lease_priority_class_pdb() {
        let now = at("2024-01-01T00:00:00Z");
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(now, 90)}, "spec": {"holderIdentity": "node-1_abc"}});
        assert_eq!(
            crate::cells("coordination.k8s.io", "leases", &lease, now),
            vec![json!("kube-scheduler"), json!("node-1_abc"), json!("90s")]
        );
        let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000, "globalDefault": false, "preemptionPolicy": "Never"});
        assert_eq!(
            crate::cells("scheduling.k8s.io", "priorityclasses", &pc, now),
            vec![json!("system-node-critical"), json!(2000001000), json!(false), json!("<unknown>"), json!("Never")]
        );
        let pdb =
            json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            crate::cells("policy", "poddisruptionbudgets", &pdb, now),
            vec![json!("web"), json!("50%"), json!("N/A"), json!(1), json!("<unknown>")]
        );
        let pdb = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": 1}});
        assert_eq!(
            crate::cells("policy", "poddisruptionbudgets", &pdb, now)[1..4],
            [json!("N/A"), json!("1"), json!(0)]
        );
    }
}
