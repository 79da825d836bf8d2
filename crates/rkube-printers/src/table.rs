//! The `meta.k8s.io/v1` Table document: column definitions, rows, and the object each row carries.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::column::Column;
use crate::{pod, printer};

/// Builds the Table of built-in `objects` of `group`/`resource`.
///
/// `list_metadata` becomes the Table's `metadata` (`resourceVersion`, `continue`, `remainingItemCount`);
/// `include_object` is the request's `includeObject` (`None`, `Object`, or `Metadata`, the default, which
/// carries each object as a `PartialObjectMetadata`); `with_columns` false leaves `columnDefinitions` empty
/// (`TableOptions.noHeaders`, as in the later events of a watch).
pub fn table(
    group: &str,
    resource: &str,
    objects: &[Value],
    list_metadata: Value,
    include_object: &str,
    with_columns: bool,
    now: SystemTime,
) -> Value {
    let p = printer(group, resource);
    let columns = if with_columns { (p.columns)() } else { Vec::new() };
    let is_pod = group.is_empty() && resource == "pods";
    build(&columns, objects, list_metadata, include_object, |o| {
        ((p.cells)(o, now), if is_pod { pod::row_conditions(o) } else { None })
    })
}

/// Assembles a Table from column definitions and a function giving each object's cells and row conditions.
pub(crate) fn build(
    columns: &[Column],
    objects: &[Value],
    list_metadata: Value,
    include_object: &str,
    row: impl Fn(&Value) -> (Vec<Value>, Option<Value>),
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let (cells, conditions) = row(o);
            let mut r = json!({ "cells": cells, "object": row_object(o, include_object) });
            if let (Some(c), Some(m)) = (conditions, r.as_object_mut()) {
                m.insert("conditions".to_owned(), c);
            }
            r
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": if list_metadata.is_null() { json!({}) } else { list_metadata },
        "columnDefinitions": columns.iter().map(Column::definition).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// The object a row carries: nothing, the whole object, or (by default) its metadata alone.
fn row_object(o: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => o.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tests_support::{ago, at};

    #[test]
    fn table_document() {
        let now = at("2024-01-01T00:00:00Z");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "done", "namespace": "default", "creationTimestamp": ago(now, 60)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        let t = crate::table(
            "",
            "pods",
            std::slice::from_ref(&pod),
            json!({"resourceVersion": "42"}),
            "Metadata",
            true,
            now,
        );
        assert_eq!((t["kind"].clone(), t["apiVersion"].clone()), (json!("Table"), json!("meta.k8s.io/v1")));
        assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
        assert_eq!(
            t["columnDefinitions"][0],
            json!({
                "name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": crate::descriptions::META_NAME,
            })
        );
        assert_eq!(t["columnDefinitions"][5]["priority"], json!(1));
        let row = &t["rows"][0];
        assert_eq!(
            row["cells"],
            json!(["done", "0/1", "Completed", "0", "60s", "<none>", "<none>", "<none>", "<none>"])
        );
        assert_eq!(
            row["object"],
            json!({
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "done", "namespace": "default", "creationTimestamp": ago(now, 60)}
            })
        );
        assert_eq!(
            row["conditions"],
            json!([{
                "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."
            }])
        );

        let t = crate::table("", "pods", std::slice::from_ref(&pod), json!(null), "Object", false, now);
        assert_eq!((t["metadata"].clone(), t["columnDefinitions"].clone()), (json!({}), json!([])));
        assert_eq!(t["rows"][0]["object"], pod);
        let t = crate::table("", "configmaps", &[json!({"metadata": {"name": "x"}})], json!({}), "None", true, now);
        assert_eq!(t["rows"][0], json!({"cells": ["x", 0, "<unknown>"], "object": null}));
    }
}
