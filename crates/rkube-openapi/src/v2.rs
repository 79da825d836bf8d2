//! Renders the model as one Swagger 2.0 document (`GET /openapi/v2`).

use serde_json::{Map, Value, json};

use crate::defs::V2_REF;
use crate::model::Model;
use crate::ops::{Operation, PathItem, Payload};
use crate::params::{In, Param};

/// The `info.version` of both documents: the Kubernetes API level served.
pub(crate) const API_LEVEL: &str = "v1.33.0";

/// Renders the whole model.
pub(crate) fn render(model: &Model) -> Value {
    let paths: Map<String, Value> = model.all_paths().iter().map(|p| (p.path.clone(), path_item(p))).collect();
    let definitions: Map<String, Value> = model.defs.schemas.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": API_LEVEL},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            },
        },
        "security": [{"BearerToken": []}],
    })
}

fn param(p: &Param) -> Value {
    let mut v = json!({"name": p.name, "type": p.ty, "description": p.description});
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

/// The name of a status code's response, as upstream writes it.
pub(crate) fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        401 => "Unauthorized",
        _ => "",
    }
}

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        params.push(json!({
            "name": "body",
            "in": "body",
            "required": body.required,
            "schema": {"$ref": format!("{V2_REF}{}", body.definition)},
        }));
    }
    params.extend(op.params.iter().map(param));
    let mut responses = Map::new();
    for (code, payload) in &op.responses {
        let schema = match payload {
            Payload::Definition(d) => json!({"$ref": format!("{V2_REF}{d}")}),
            Payload::Text => json!({"type": "string"}),
        };
        responses.insert(code.to_string(), json!({"description": status_text(*code), "schema": schema}));
    }
    responses.insert("401".into(), json!({"description": status_text(401)}));
    let mut v = json!({
        "description": op.description,
        "operationId": op.id,
        "consumes": op.body.as_ref().map_or(&["*/*"][..], |b| b.consumes),
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    });
    if !op.action.is_empty() {
        v["x-kubernetes-action"] = json!(op.action);
    }
    if let Some(gvk) = &op.gvk {
        v["x-kubernetes-group-version-kind"] = gvk.to_json();
    }
    v
}
