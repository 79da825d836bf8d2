//! `apps` kinds: deployments and stateful sets (READY `2/3`), replica sets, daemon sets, controller revisions.

use serde_json::{Value, json};

use crate::Printer;
use crate::column;
use crate::descriptions::{
    CR_REVISION, DEP_AVAILABLE, DEP_SELECTOR, DEP_UPDATED, DS_AVAILABLE, DS_CURRENT, DS_DESIRED, DS_READY, DS_SELECTOR,
    DS_UPDATED, POD_NODESEL, RS_REPLICAS, RS_SELECTOR, RSS_READY, RSS_REPLICAS,
};
use crate::format::{containers, label_selector, labels, selector_string};
use crate::value::{age, arr_at, int_at, map_at, name, opt_int, str_at};

/// `spec.replicas`, which defaults to 1.
fn desired(o: &Value) -> i64 {
    opt_int(o, "/spec/replicas").unwrap_or(1)
}

/// The wide Containers and Images cells of the pod template at `/spec/template`.
fn template_containers(o: &Value) -> [Value; 2] {
    let (names, images) = containers(arr_at(o, "/spec/template/spec/containers"));
    [json!(names), json!(images)]
}

/// `deployments`.
pub(crate) const DEPLOYMENTS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::string("Ready", "Number of the pod with ready state"),
            column::string("Up-to-date", DEP_UPDATED),
            column::string("Available", DEP_AVAILABLE),
            column::age(),
            c,
            i,
            column::wide("Selector", DEP_SELECTOR),
        ]
    },
    cells: |o, now| {
        let [names, images] = template_containers(o);
        vec![
            name(o),
            json!(format!("{}/{}", int_at(o, "/status/readyReplicas"), desired(o))),
            json!(int_at(o, "/status/updatedReplicas")),
            json!(int_at(o, "/status/availableReplicas")),
            age(o, now),
            names,
            images,
            // Upstream prints the deployment's selector without the `<none>` placeholder.
            json!(selector_string(o.pointer("/spec/selector"))),
        ]
    },
};

/// `replicasets`.
pub(crate) const REPLICA_SETS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::integer("Desired", RS_REPLICAS),
            column::integer("Current", RSS_REPLICAS),
            column::integer("Ready", RSS_READY),
            column::age(),
            c,
            i,
            column::wide("Selector", RS_SELECTOR),
        ]
    },
    cells: |o, now| {
        let [names, images] = template_containers(o);
        vec![
            name(o),
            json!(desired(o)),
            json!(int_at(o, "/status/replicas")),
            json!(int_at(o, "/status/readyReplicas")),
            age(o, now),
            names,
            images,
            json!(label_selector(o.pointer("/spec/selector"))),
        ]
    },
};

/// `statefulsets`.
pub(crate) const STATEFUL_SETS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![column::name(), column::string("Ready", "Number of the pod with ready state"), column::age(), c, i]
    },
    cells: |o, now| {
        let [names, images] = template_containers(o);
        vec![
            name(o),
            json!(format!("{}/{}", int_at(o, "/status/readyReplicas"), desired(o))),
            age(o, now),
            names,
            images,
        ]
    },
};

/// `daemonsets`.
pub(crate) const DAEMON_SETS: Printer = Printer {
    columns: || {
        let [c, i] = column::containers_images();
        vec![
            column::name(),
            column::integer("Desired", DS_DESIRED),
            column::integer("Current", DS_CURRENT),
            column::integer("Ready", DS_READY),
            column::integer("Up-to-date", DS_UPDATED),
            column::integer("Available", DS_AVAILABLE),
            column::string("Node Selector", POD_NODESEL),
            column::age(),
            c,
            i,
            column::wide("Selector", DS_SELECTOR),
        ]
    },
    cells: |o, now| {
        let [names, images] = template_containers(o);
        vec![
            name(o),
            json!(int_at(o, "/status/desiredNumberScheduled")),
            json!(int_at(o, "/status/currentNumberScheduled")),
            json!(int_at(o, "/status/numberReady")),
            json!(int_at(o, "/status/updatedNumberScheduled")),
            json!(int_at(o, "/status/numberAvailable")),
            json!(labels(map_at(o, "/spec/template/spec/nodeSelector"))),
            age(o, now),
            names,
            images,
            json!(label_selector(o.pointer("/spec/selector"))),
        ]
    },
};

/// `controllerrevisions`: CONTROLLER as `daemonset.apps/name`.
pub(crate) const CONTROLLER_REVISIONS: Printer = Printer {
    columns: || {
        vec![
            column::name(),
            column::string("Controller", "Controller of the object"),
            column::string("Revision", CR_REVISION),
            column::age(),
        ]
    },
    cells: |o, now| vec![name(o), json!(controller_of(o)), json!(int_at(o, "/revision")), age(o, now)],
};

/// The owner reference marked `controller: true`, as `kind.group/name` in lower case (no group for the core
/// group); `<none>` without one.
fn controller_of(o: &Value) -> String {
    let Some(owner) = arr_at(o, "/metadata/ownerReferences").iter().find(|r| r.get("controller") == Some(&json!(true)))
    else {
        return "<none>".to_owned();
    };
    let api_version = str_at(owner, "/apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = str_at(owner, "/kind");
    let name = str_at(owner, "/name");
    match (kind, group) {
        ("", "") => name.to_owned(),
        (k, "") => format!("{}/{name}", k.to_lowercase()),
        (k, g) => format!("{}.{}/{name}", k.to_lowercase(), g.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn deployment_ready_and_wide() {
        let now = at("2024-01-01T00:00:00Z");
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(now, 7200)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            crate::cells("apps", "deployments", &d, now),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("120m"),
                json!("nginx,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web"),
            ]
        );
    }

    #[test]
    fn statefulset_replicaset_daemonset() {
        let now = at("2024-01-01T00:00:00Z");
        let sts = json!({"metadata": {"name": "db"}, "spec": {"template": {"spec": {"containers": [{"name": "pg", "image": "postgres"}]}}}});
        assert_eq!(
            crate::cells("apps", "statefulsets", &sts, now),
            vec![json!("db"), json!("0/1"), json!("<unknown>"), json!("pg"), json!("postgres")]
        );
        let rs = json!({"metadata": {"name": "web-5d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d"}}},
                        "status": {"replicas": 2, "readyReplicas": 1}});
        let cells = crate::cells("apps", "replicasets", &rs, now);
        assert_eq!(cells[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(cells[7], json!("app=web,pod-template-hash=5d"));
        let ds = json!({
            "metadata": {"name": "proxy"},
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        let cells = crate::cells("apps", "daemonsets", &ds, now);
        assert_eq!(cells[1..7], [json!(3), json!(3), json!(2), json!(3), json!(2), json!("kubernetes.io/os=linux")]);
        assert_eq!(cells[10], json!("<none>"));
    }

    #[test]
    fn controller_revision() {
        let now = at("2024-01-01T00:00:00Z");
        let cr = json!({
            "metadata": {"name": "proxy-7f", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "other"},
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}]},
            "revision": 2
        });
        assert_eq!(
            crate::cells("apps", "controllerrevisions", &cr, now),
            vec![json!("proxy-7f"), json!("daemonset.apps/proxy"), json!(2), json!("<unknown>")]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(crate::cells("apps", "controllerrevisions", &orphan, now)[1], json!("<none>"));
    }
}
