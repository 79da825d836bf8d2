//! Server-side printing: the `Table` kubectl shows, with the columns upstream's printers give each kind.

mod age;
mod columns;

use serde_json::{Value, json};

pub use age::human_duration;

use crate::resource::ResourceDef;

/// One column: name, type, format, description, priority (0 always shown, 1 with `-o wide`).
pub type Column = (&'static str, &'static str, &'static str, &'static str, u8);

/// The column definitions of a Table.
fn column_definitions(cols: &[Column]) -> Value {
    Value::Array(
        cols.iter()
            .map(|(name, ty, format, description, priority)| {
                json!({ "name": name, "type": ty, "format": format, "description": description, "priority": priority })
            })
            .collect(),
    )
}

/// The metadata-only form of an object that rows carry by default (`includeObject=Metadata`).
fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Builds a Table of `objects`; `include_object` is the `includeObject` parameter (None, Metadata, Object).
pub fn table(def: &ResourceDef, objects: &[Value], list_meta: Value, include_object: &str, with_columns: bool) -> Value {
    let cols = columns::for_kind(def);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells = columns::cells(def, o);
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => partial_metadata(o),
            };
            json!({ "cells": cells, "object": object })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if with_columns { column_definitions(&cols) } else { json!([]) },
        "rows": rows,
    })
}
