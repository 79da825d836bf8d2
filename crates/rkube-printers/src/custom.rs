//! Custom resources: a CRD version's `additionalPrinterColumns` as Table columns and cells.
//!
//! As apiextensions-apiserver's table convertor builds them: `Name` first, then each column's JSONPath; one
//! `Age` column when the CRD declares none.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::age::{human_duration, parse_time, seconds_between};
use crate::column::{self, Column};
use crate::descriptions::META_CREATED;
use crate::jsonpath::Path;
use crate::table::build;
use crate::value::{int_at, name, str_at};

/// The printer columns a CRD version declares, or upstream's default (`Age`, a date from
/// `.metadata.creationTimestamp`) when it declares none.
fn effective(spec: &Value) -> Vec<Value> {
    match spec.as_array() {
        Some(cols) if !cols.is_empty() => cols.clone(),
        _ => vec![json!({
            "name": "Age",
            "type": "date",
            "description": META_CREATED,
            "jsonPath": ".metadata.creationTimestamp",
        })],
    }
}

/// A column's path: `jsonPath` in `apiextensions.k8s.io/v1`, `JSONPath` in the older v1beta1 shape.
fn json_path(c: &Value) -> &str {
    match str_at(c, "/jsonPath") {
        "" => str_at(c, "/JSONPath"),
        p => p,
    }
}

/// The Table columns of a custom resource: `Name`, then each of the CRD version's `additionalPrinterColumns`
/// (`{name, type, format, description, priority, jsonPath}`), or `Age` when there are none.
pub fn custom_columns(additional_printer_columns: &Value) -> Vec<Column> {
    let mut cols = vec![column::name()];
    for c in effective(additional_printer_columns) {
        let path = json_path(&c);
        let description = match str_at(&c, "/description") {
            "" => format!("Custom resource definition column (in JSONPath format): {path}"),
            d => d.to_owned(),
        };
        cols.push(Column {
            name: str_at(&c, "/name").to_owned(),
            type_: str_at(&c, "/type").to_owned(),
            format: str_at(&c, "/format").to_owned(),
            description,
            priority: i32::try_from(int_at(&c, "/priority")).unwrap_or(0),
        });
    }
    cols
}

/// The cells of a custom resource's row for the columns of [`custom_columns`]: the name, then each column's
/// JSONPath evaluated on `obj` (the first result; null when the path finds nothing).
pub fn custom_cells(columns_spec: &Value, obj: &Value, now: SystemTime) -> Vec<Value> {
    let mut cells = vec![name(obj)];
    for c in effective(columns_spec) {
        let found = Path::parse(json_path(&c)).and_then(|p| p.find(obj).first().copied().cloned());
        cells.push(match found {
            Some(v) => cell(str_at(&c, "/type"), &v, now),
            None => Value::Null,
        });
    }
    cells
}

/// A whole Table of custom resources; the other arguments are as for [`crate::table`].
pub fn custom_table(
    columns_spec: &Value,
    objects: &[Value],
    list_metadata: Value,
    include_object: &str,
    with_columns: bool,
    now: SystemTime,
) -> Value {
    let columns = if with_columns { custom_columns(columns_spec) } else { Vec::new() };
    build(&columns, objects, list_metadata, include_object, |o| (custom_cells(columns_spec, o, now), None))
}

/// One cell as upstream's `cellForJSONValue` converts it to the column's type; strings are printed the way
/// client-go's JSONPath prints a result.
fn cell(type_: &str, v: &Value, now: SystemTime) -> Value {
    match type_ {
        "string" => json!(print_result(v)),
        "integer" => match v {
            #[allow(clippy::cast_possible_truncation)]
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map_or(Value::Null, |i| json!(i)),
            _ => Value::Null,
        },
        "number" => match v.as_f64() {
            // Go writes a whole float64 without a fraction; so does this.
            #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => json!(f as i64),
            Some(f) => json!(f),
            None => Value::Null,
        },
        "boolean" => v.as_bool().map_or(Value::Null, Value::Bool),
        "date" => match v.as_str() {
            Some(s) => match parse_time(s) {
                Some(t) => json!(human_duration(seconds_between(t, now))),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A JSONPath result as text: strings bare, maps and lists as compact JSON, numbers as Go prints them.
fn print_result(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        // Go's text/template prints a nil interface so.
        Value::Null => "<no value>".to_owned(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

/// A float64 as Go's `%v` writes it: shortest form, exponent notation below 1e-4 and from 1e21.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Rust writes `1e21` / `1e-5`; Go writes `1e+21` / `1e-05`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tests_support::{ago, at};

    fn spec() -> Value {
        json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "description": "Readiness"},
            {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1},
            {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
            {"name": "Selector", "type": "string", "JSONPath": ".spec.selector"},
            {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
            {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"}
        ])
    }

    #[test]
    fn columns_from_crd() {
        let cols = custom_columns(&spec());
        assert_eq!(cols[0], column::name());
        assert_eq!(
            cols[1].definition(),
            json!({
                "name": "Replicas", "type": "integer", "format": "",
                "description": "Custom resource definition column (in JSONPath format): .spec.replicas", "priority": 0
            })
        );
        assert_eq!((cols[2].description.as_str(), cols[3].priority), ("Readiness", 1));
        let default = custom_columns(&Value::Null);
        assert_eq!(
            default.iter().map(|c| (c.name.as_str(), c.type_.as_str())).collect::<Vec<_>>(),
            [("Name", "string"), ("Age", "date")]
        );
    }

    #[test]
    fn cells_from_json_paths() {
        let now = at("2024-01-01T00:00:00Z");
        let obj = json!({
            "metadata": {"name": "w1", "creationTimestamp": ago(now, 600)},
            "spec": {"replicas": 2.0, "paused": true, "selector": {"matchLabels": {"a": "b"}}},
            "status": {"ratio": 0.5, "startTime": ago(now, 125),
                       "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}
        });
        assert_eq!(
            custom_cells(&spec(), &obj, now),
            vec![
                json!("w1"),
                json!(2),
                json!("False"),
                json!(0.5),
                json!(true),
                json!("{\"matchLabels\":{\"a\":\"b\"}}"),
                json!("2m5s"),
                Value::Null,
            ]
        );
        assert_eq!(custom_cells(&json!([]), &obj, now), vec![json!("w1"), json!("10m")]);
        let table = custom_table(&json!([]), &[obj], json!({"resourceVersion": "5"}), "None", true, now);
        assert_eq!(table["rows"][0], json!({"cells": ["w1", "10m"], "object": null}));
        assert_eq!(table["columnDefinitions"][1]["name"], json!("Age"));
    }

    #[test]
    fn go_number_text() {
        assert_eq!(print_result(&json!(3)), "3");
        assert_eq!(print_result(&json!(1.5)), "1.5");
        assert_eq!(print_result(&json!(1e21)), "1e+21");
        assert_eq!(print_result(&json!(0.00001)), "1e-05");
        assert_eq!(print_result(&Value::Null), "<no value>");
    }
}
