//! Renders one OpenAPI 3.0 document per group-version, and the index that lists them.
//!
//! They are served at `GET /openapi/v3/apis/<group>/<version>` and `GET /openapi/v3`. Each document is self-contained: it carries every schema its operations reach, meta types included,
//! as upstream's do. References with siblings (a field's own description next to the `$ref`) become
//! `allOf: [{$ref}]`, because OpenAPI 3.0 ignores a `$ref`'s siblings and kubectl explain reads
//! upstream's form.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::defs::{self, QUANTITY, V2_REF};
use crate::model::{self, Model};
use crate::ops::{Operation, PathItem, Payload};
use crate::params::{In, Param};
use crate::published::Published;
use crate::v2::{API_LEVEL, status_text};

/// Prefix of references between OpenAPI 3 schemas.
pub(crate) const V3_REF: &str = "#/components/schemas/";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// Renders the document of one group-version.
pub(crate) fn render_gv(model: &Model, group: &str, version: &str) -> Value {
    let paths = model.gv_paths(group, version);
    let roots = model::referenced(&paths);
    let names = defs::closure(&model.defs.schemas, roots.iter().map(String::as_str));
    let schemas: Map<String, Value> =
        names.iter().filter_map(|n| model.defs.schemas.get(n).map(|s| (n.clone(), schema(n, s)))).collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": API_LEVEL},
        "paths": paths.iter().map(|p| (p.path.clone(), path_item(p))).collect::<Map<_, _>>(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
        },
        "security": [{"BearerToken": []}],
    })
}

/// Renders every group-version of the model, keyed by document path (`api/v1`, `apis/apps/v1`).
pub(crate) fn render_all(model: &Model) -> BTreeMap<String, Published> {
    model
        .group_versions()
        .iter()
        .map(|(g, v)| (crate::gvk::gv_path(g, v), Published::new(render_gv(model, g, v))))
        .collect()
}

/// The index: each document path with a URL whose `hash` changes whenever the document does.
pub(crate) fn index<'a>(docs: impl IntoIterator<Item = (&'a String, &'a Published)>) -> Value {
    let paths: Map<String, Value> = docs
        .into_iter()
        .map(|(path, doc)| {
            (path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash())}))
        })
        .collect();
    json!({ "paths": paths })
}

/// Converts one definition from Swagger 2.0 form.
pub(crate) fn schema(name: &str, v2: &Value) -> Value {
    let description = v2.get("description").cloned().unwrap_or(Value::Null);
    match name {
        INT_OR_STRING => json!({
            "description": description,
            "oneOf": [{"type": "integer"}, {"type": "string"}],
            "format": "int-or-string",
        }),
        QUANTITY => json!({"description": description, "oneOf": [{"type": "string"}, {"type": "number"}]}),
        _ => convert(v2),
    }
}

/// Rewrites references to `#/components/schemas/` and wraps references that have siblings in `allOf`.
pub(crate) fn convert(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
            if let Some(Value::String(r)) = map.get("$ref") {
                let target = json!(r.strip_prefix(V2_REF).map_or_else(|| r.clone(), |n| format!("{V3_REF}{n}")));
                if map.len() == 1 {
                    out.insert("$ref".into(), target);
                } else {
                    out.remove("$ref");
                    out.insert("allOf".into(), json!([{"$ref": target}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        other => other.clone(),
    }
}

fn param(p: &Param) -> Value {
    let mut v = json!({"name": p.name, "description": p.description, "schema": {"type": p.ty}});
    match p.location {
        In::Path => {
            v["in"] = json!("path");
            v["required"] = json!(true);
        }
        In::Query => v["in"] = json!("query"),
    }
    v
}

fn path_item(p: &PathItem) -> Value {
    let mut item = Map::new();
    for op in &p.ops {
        item.insert(op.method.to_owned(), operation(op));
    }
    item.insert("parameters".into(), Value::Array(p.params.iter().map(param).collect()));
    Value::Object(item)
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    for (code, payload) in &op.responses {
        let schema = match payload {
            Payload::Definition(d) => json!({"$ref": format!("{V3_REF}{d}")}),
            Payload::Text => json!({"type": "string"}),
        };
        let content: Map<String, Value> =
            op.produces.iter().map(|ct| ((*ct).to_owned(), json!({"schema": schema}))).collect();
        responses.insert(code.to_string(), json!({"description": status_text(*code), "content": content}));
    }
    responses.insert("401".into(), json!({"description": status_text(401)}));
    let mut v = json!({
        "description": op.description,
        "operationId": op.id,
        "tags": [op.tag],
        "parameters": op.params.iter().map(param).collect::<Vec<_>>(),
        "responses": responses,
    });
    if let Some(body) = &op.body {
        let schema = json!({"$ref": format!("{V3_REF}{}", body.definition)});
        let content: Map<String, Value> =
            body.consumes.iter().map(|ct| ((*ct).to_owned(), json!({"schema": schema}))).collect();
        v["requestBody"] = json!({"content": content, "required": body.required});
    }
    if !op.action.is_empty() {
        v["x-kubernetes-action"] = json!(op.action);
    }
    if let Some(gvk) = &op.gvk {
        v["x-kubernetes-group-version-kind"] = gvk.to_json();
    }
    v
}
