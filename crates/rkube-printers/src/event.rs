//! Events, core `v1` and `events.k8s.io/v1` alike: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
//!
//! Wide adds SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME. Upstream prints both API versions from one
//! internal type; here the `events.k8s.io` field names (`regarding`, `note`, `deprecated*`) are read directly.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::Printer;
use crate::age::translate_timestamp_since;
use crate::column::{self, Column};
use crate::descriptions::{
    EV_COUNT, EV_FIRST, EV_LAST, EV_MSG, EV_OBJ, EV_REASON, EV_SOURCE, EV_TYPE, META_NAME, OR_FIELDPATH,
};
use crate::value::{has, int_at, opt_str, str_at};

/// Core `events`.
pub(crate) const CORE_EVENTS: Printer = Printer { columns, cells: |o, now| cells(o, &CORE, now) };

/// `events.k8s.io` `events`.
pub(crate) const EVENTS_V1: Printer = Printer { columns, cells: |o, now| cells(o, &V1, now) };

/// Where each field lives in one of the two Event shapes.
struct Fields {
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source_component: &'static str,
    source_host: &'static str,
}

const CORE: Fields = Fields {
    involved: "/involvedObject",
    message: "/message",
    first: "/firstTimestamp",
    last: "/lastTimestamp",
    count: "/count",
    source_component: "/source/component",
    source_host: "/source/host",
};

const V1: Fields = Fields {
    involved: "/regarding",
    message: "/note",
    first: "/deprecatedFirstTimestamp",
    last: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    source_component: "/deprecatedSource/component",
    source_host: "/deprecatedSource/host",
};

/// Upstream's only table whose Name column is not first: events are about another object.
fn columns() -> Vec<Column> {
    vec![
        column::string("Last Seen", EV_LAST),
        column::string("Type", EV_TYPE),
        column::string("Reason", EV_REASON),
        column::string("Object", EV_OBJ),
        column::wide("Subobject", OR_FIELDPATH),
        column::wide("Source", EV_SOURCE),
        column::string("Message", EV_MSG),
        column::wide("First Seen", EV_FIRST),
        column::wide("Count", EV_COUNT),
        Column { format: "name".to_owned(), ..column::wide("Name", META_NAME) },
    ]
}

/// A timestamp field, treating an empty string or null as unset (Go's zero time).
fn time_field<'a>(o: &'a Value, ptr: &str) -> Option<&'a str> {
    opt_str(o, ptr).filter(|s| !s.is_empty())
}

fn cells(o: &Value, f: &Fields, now: SystemTime) -> Vec<Value> {
    // Events recorded through events.k8s.io carry eventTime instead of firstTimestamp.
    let first = match time_field(o, f.first) {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => translate_timestamp_since(time_field(o, "/eventTime"), now),
    };
    let mut last = match time_field(o, f.last) {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(o, f.count);
    if has(o, "/series") {
        last = translate_timestamp_since(time_field(o, "/series/lastObservedTime"), now);
        count = int_at(o, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let kind = str_at(o, &format!("{}/kind", f.involved)).to_lowercase();
    let target = match str_at(o, &format!("{}/name", f.involved)) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(str_at(o, f.source_component), str_at(o, "/reportingController"));
    let host = first_non_empty(str_at(o, f.source_host), str_at(o, "/reportingInstance"));
    let source = if host.is_empty() { component.to_owned() } else { format!("{component}, {host}") };
    vec![
        json!(last),
        json!(str_at(o, "/type")),
        json!(str_at(o, "/reason")),
        json!(target),
        json!(str_at(o, &format!("{}/fieldPath", f.involved))),
        json!(source),
        json!(str_at(o, f.message).trim()),
        json!(first),
        json!(count),
        json!(str_at(o, "/metadata/name")),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn core_event() {
        let now = at("2024-01-01T01:00:00Z");
        let ev = json!({
            "metadata": {"name": "web.17a", "creationTimestamp": ago(now, 3600)},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "firstTimestamp": ago(now, 600), "lastTimestamp": ago(now, 30), "count": 7,
            "source": {"component": "kubelet", "host": "node-1"}
        });
        assert_eq!(
            crate::cells("", "events", &ev, now),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("10m"),
                json!(7),
                json!("web.17a"),
            ]
        );
    }

    #[test]
    fn events_v1_with_series_and_event_time() {
        let now = at("2024-01-01T01:00:00Z");
        let ev = json!({
            "metadata": {"name": "n.1"},
            "regarding": {"kind": "Node", "name": "n"},
            "reason": "Starting", "type": "Normal", "note": "Starting kubelet.",
            "eventTime": ago(now, 120), "reportingController": "kubelet", "reportingInstance": "",
            "series": {"count": 4, "lastObservedTime": ago(now, 5)}
        });
        let cells = crate::cells("events.k8s.io", "events", &ev, now);
        assert_eq!(cells[0], json!("5s"));
        assert_eq!(cells[3], json!("node/n"));
        assert_eq!(cells[5], json!("kubelet"));
        assert_eq!(cells[6], json!("Starting kubelet."));
        assert_eq!(cells[7], json!("2m"));
        assert_eq!(cells[8], json!(4));
        // Without series or count: a singleton, last seen when first seen.
        let single =
            json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Pod"}, "firstTimestamp": ago(now, 60)});
        let cells = crate::cells("", "events", &single, now);
        assert_eq!((cells[0].clone(), cells[3].clone(), cells[8].clone()), (json!("60s"), json!("pod"), json!(1)));
    }
}
