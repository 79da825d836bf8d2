//! The Swagger 2.0 document in gnostic's protobuf form (`openapi.v2.Document`), as kubectl fetches it.
//!
//! Upstream's kube-openapi handler answers `/openapi/v2` protobuf requests with
//! `proto.Marshal(openapi_v2.ParseDocument(json))`: gnostic-models' generated compiler walks the JSON and
//! fills the messages of `openapiv2/OpenAPIv2.proto`. This module does the same walk by hand, with the
//! field numbers of that file, so no code generation is needed. Each message is a table of (JSON key,
//! field number, kind) in field-number order, which is also the order Go marshals fields in; `x-` keys
//! become `NamedAny` vendor extensions whose `Any.yaml` is the value's YAML text. Oneofs are resolved as
//! gnostic's matching resolves them (a `$ref` makes a `JsonReference`, `in` picks the parameter variant,
//! `type` the security scheme). Keys the messages have no field for are dropped, as gnostic drops them.

use serde_json::{Map, Value};

use crate::pb_writer::Writer;
use crate::yaml_text::to_yaml;

/// Encodes a whole Swagger 2.0 document as an `openapi.v2.Document`.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    // The protobuf runs to about half the size of the JSON (names are tags, no punctuation).
    let mut w = Writer::with_capacity(1 << 20);
    fields(&mut w, doc, DOCUMENT);
    w.finish()
}

/// Writes the body of one message from a JSON value.
type Encode = fn(&mut Writer, &Value);

/// How a JSON value becomes a field.
#[derive(Clone, Copy)]
enum Kind {
    /// `string`, from a JSON string.
    Str,
    /// `bool`, from a JSON boolean.
    Bool,
    /// `double`, from a JSON number.
    Double,
    /// `int64`, from a JSON integer.
    Int64,
    /// `repeated string`, from an array of strings.
    Strings,
    /// `Any`: the value as YAML text.
    Any,
    /// `repeated Any`, one per array element.
    Anys,
    /// A sub-message.
    Msg(Encode),
    /// A repeated sub-message, one per array element.
    Msgs(Encode),
    /// `repeated NamedAny vendor_extension`: the object's own `x-` keys (the field's key is unused).
    Vendor,
}

/// One field of a message: JSON key, field number, kind.
type Field = (&'static str, u32, Kind);

use Kind::{Any, Anys, Bool, Double, Int64, Msg, Msgs, Str, Strings, Vendor};

/// Writes the fields of `table` (in field-number order) found in the object `v`.
fn fields(w: &mut Writer, v: &Value, table: &[Field]) {
    let Some(obj) = v.as_object() else { return };
    for &(key, num, kind) in table {
        if let Kind::Vendor = kind {
            vendor_extensions(w, num, obj);
            continue;
        }
        let Some(x) = obj.get(key) else { continue };
        match kind {
            Str => w.string(num, x.as_str().unwrap_or_default()),
            Bool => w.bool(num, x.as_bool().unwrap_or_default()),
            Double => w.double(num, x.as_f64().unwrap_or_default()),
            Int64 => w.int64(num, x.as_i64().unwrap_or_default()),
            Strings => {
                for s in x.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    w.string_always(num, s);
                }
            }
            Any => any(w, num, x),
            Anys => {
                for item in x.as_array().into_iter().flatten() {
                    any(w, num, item);
                }
            }
            Msg(body) => w.message(num, |w| body(w, x)),
            Msgs(body) => {
                for item in x.as_array().into_iter().flatten() {
                    w.message(num, |w| body(w, item));
                }
            }
            Vendor => {}
        }
    }
}

/// `Any { yaml = 2 }` (gnostic leaves the `google.protobuf.Any value = 1` unset).
fn any(w: &mut Writer, num: u32, v: &Value) {
    w.message(num, |w| w.string(2, &to_yaml(v)));
}

/// `NamedAny { name = 1; value = 2 }` for each `x-` key, in the object's key order.
fn vendor_extensions(w: &mut Writer, num: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        w.message(num, |w| {
            w.string(1, k);
            any(w, 2, v);
        });
    }
}

/// A `Named<T> { name = 1; value = 2 }` for each entry of the object `v` whose key `select`s.
fn named(w: &mut Writer, num: u32, v: &Value, select: fn(&str) -> bool, value: Encode) {
    for (k, x) in v.as_object().into_iter().flatten().filter(|(k, _)| select(k)) {
        w.message(num, |w| {
            w.string(1, k);
            w.message(2, |w| value(w, x));
        });
    }
}

fn every_key(_: &str) -> bool {
    true
}

const DOCUMENT: &[Field] = &[
    ("swagger", 1, Str),
    ("info", 2, Msg(info)),
    ("host", 3, Str),
    ("basePath", 4, Str),
    ("schemes", 5, Strings),
    ("consumes", 6, Strings),
    ("produces", 7, Strings),
    ("paths", 8, Msg(paths)),
    ("definitions", 9, Msg(definitions)),
    ("parameters", 10, Msg(parameter_definitions)),
    ("responses", 11, Msg(response_definitions)),
    ("security", 12, Msgs(security_requirement)),
    ("securityDefinitions", 13, Msg(security_definitions)),
    ("tags", 14, Msgs(tag)),
    ("externalDocs", 15, Msg(external_docs)),
    ("", 16, Vendor),
];

fn info(w: &mut Writer, v: &Value) {
    const INFO: &[Field] = &[
        ("title", 1, Str),
        ("version", 2, Str),
        ("description", 3, Str),
        ("termsOfService", 4, Str),
        ("contact", 5, Msg(contact)),
        ("license", 6, Msg(license)),
        ("", 7, Vendor),
    ];
    fields(w, v, INFO);
}

fn contact(w: &mut Writer, v: &Value) {
    fields(w, v, &[("name", 1, Str), ("url", 2, Str), ("email", 3, Str), ("", 4, Vendor)]);
}

fn license(w: &mut Writer, v: &Value) {
    fields(w, v, &[("name", 1, Str), ("url", 2, Str), ("", 3, Vendor)]);
}

fn external_docs(w: &mut Writer, v: &Value) {
    fields(w, v, &[("description", 1, Str), ("url", 2, Str), ("", 3, Vendor)]);
}

fn tag(w: &mut Writer, v: &Value) {
    fields(
        w,
        v,
        &[("name", 1, Str), ("description", 2, Str), ("externalDocs", 3, Msg(external_docs)), ("", 4, Vendor)],
    );
}

/// `Paths { vendor_extension = 1; repeated NamedPathItem path = 2 }`: keys starting `/` are paths.
fn paths(w: &mut Writer, v: &Value) {
    fields(w, v, &[("", 1, Vendor)]);
    named(w, 2, v, |k| k.starts_with('/'), path_item);
}

fn path_item(w: &mut Writer, v: &Value) {
    const PATH_ITEM: &[Field] = &[
        ("$ref", 1, Str),
        ("get", 2, Msg(operation)),
        ("put", 3, Msg(operation)),
        ("post", 4, Msg(operation)),
        ("delete", 5, Msg(operation)),
        ("options", 6, Msg(operation)),
        ("head", 7, Msg(operation)),
        ("patch", 8, Msg(operation)),
        ("parameters", 9, Msgs(parameters_item)),
        ("", 10, Vendor),
    ];
    fields(w, v, PATH_ITEM);
}

fn operation(w: &mut Writer, v: &Value) {
    const OPERATION: &[Field] = &[
        ("tags", 1, Strings),
        ("summary", 2, Str),
        ("description", 3, Str),
        ("externalDocs", 4, Msg(external_docs)),
        ("operationId", 5, Str),
        ("produces", 6, Strings),
        ("consumes", 7, Strings),
        ("parameters", 8, Msgs(parameters_item)),
        ("responses", 9, Msg(responses)),
        ("schemes", 10, Strings),
        ("deprecated", 11, Bool),
        ("security", 12, Msgs(security_requirement)),
        ("", 13, Vendor),
    ];
    fields(w, v, OPERATION);
}

/// `ParametersItem` oneof: `Parameter parameter = 1` or `JsonReference json_reference = 2`. A `$ref` key
/// is no parameter key, so gnostic's `Parameter` match fails and the reference matches.
fn parameters_item(w: &mut Writer, v: &Value) {
    if v.get("$ref").is_some() {
        w.message(2, |w| json_reference(w, v));
    } else {
        w.message(1, |w| parameter(w, v));
    }
}

fn json_reference(w: &mut Writer, v: &Value) {
    fields(w, v, &[("$ref", 1, Str), ("description", 2, Str)]);
}

/// `Parameter` oneof: `BodyParameter body_parameter = 1` (`in: body`) or `NonBodyParameter = 2`.
fn parameter(w: &mut Writer, v: &Value) {
    if v.get("in").and_then(Value::as_str) == Some("body") {
        w.message(1, |w| body_parameter(w, v));
    } else {
        w.message(2, |w| non_body_parameter(w, v));
    }
}

fn body_parameter(w: &mut Writer, v: &Value) {
    const BODY: &[Field] = &[
        ("description", 1, Str),
        ("name", 2, Str),
        ("in", 3, Str),
        ("required", 4, Bool),
        ("schema", 5, Msg(schema)),
        ("", 6, Vendor),
    ];
    fields(w, v, BODY);
}

/// `NonBodyParameter` oneof, by `in`: header = 1, formData = 2, query = 3, path = 4.
fn non_body_parameter(w: &mut Writer, v: &Value) {
    match v.get("in").and_then(Value::as_str) {
        Some("header") => w.message(1, |w| header_or_path_parameter(w, v)),
        Some("formData") => w.message(2, |w| query_or_form_parameter(w, v)),
        Some("query") => w.message(3, |w| query_or_form_parameter(w, v)),
        Some("path") => w.message(4, |w| header_or_path_parameter(w, v)),
        // gnostic rejects the document here; leaving the oneof unset keeps the rest readable.
        _ => {}
    }
}

/// The validation keywords every primitive-typed message shares, numbered from `base` (`type`) on:
/// `PrimitivesItems` and `Header` from 1, header and path parameters from 5, query and form-data
/// parameters (one more field, `allowEmptyValue`) from 6.
fn primitive_fields(base: u32) -> [Field; 17] {
    [
        ("type", base, Str),
        ("format", base + 1, Str),
        ("items", base + 2, Msg(primitives_items)),
        ("collectionFormat", base + 3, Str),
        ("default", base + 4, Any),
        ("maximum", base + 5, Double),
        ("exclusiveMaximum", base + 6, Bool),
        ("minimum", base + 7, Double),
        ("exclusiveMinimum", base + 8, Bool),
        ("maxLength", base + 9, Int64),
        ("minLength", base + 10, Int64),
        ("pattern", base + 11, Str),
        ("maxItems", base + 12, Int64),
        ("minItems", base + 13, Int64),
        ("uniqueItems", base + 14, Bool),
        ("enum", base + 15, Anys),
        ("multipleOf", base + 16, Double),
    ]
}

/// `HeaderParameterSubSchema` and `PathParameterSubSchema` (same layout).
fn header_or_path_parameter(w: &mut Writer, v: &Value) {
    fields(w, v, &[("required", 1, Bool), ("in", 2, Str), ("description", 3, Str), ("name", 4, Str)]);
    fields(w, v, &primitive_fields(5));
    fields(w, v, &[("", 22, Vendor)]);
}

/// `QueryParameterSubSchema` and `FormDataParameterSubSchema` (same layout).
fn query_or_form_parameter(w: &mut Writer, v: &Value) {
    const HEAD: &[Field] = &[
        ("required", 1, Bool),
        ("in", 2, Str),
        ("description", 3, Str),
        ("name", 4, Str),
        ("allowEmptyValue", 5, Bool),
    ];
    fields(w, v, HEAD);
    fields(w, v, &primitive_fields(6));
    fields(w, v, &[("", 23, Vendor)]);
}

fn primitives_items(w: &mut Writer, v: &Value) {
    fields(w, v, &primitive_fields(1));
    fields(w, v, &[("", 18, Vendor)]);
}

/// A response `Header`.
fn header(w: &mut Writer, v: &Value) {
    fields(w, v, &primitive_fields(1));
    fields(w, v, &[("description", 18, Str), ("", 19, Vendor)]);
}

/// `Responses { repeated NamedResponseValue response_code = 1; vendor_extension = 2 }`.
fn responses(w: &mut Writer, v: &Value) {
    named(w, 1, v, is_response_code, response_value);
    fields(w, v, &[("", 2, Vendor)]);
}

/// gnostic's `^([0-9]{3})$|^(default)$`.
fn is_response_code(k: &str) -> bool {
    k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()))
}

/// `ResponseValue` oneof: `Response response = 1` or `JsonReference json_reference = 2` (a `$ref`).
fn response_value(w: &mut Writer, v: &Value) {
    if v.get("$ref").is_some() {
        w.message(2, |w| json_reference(w, v));
    } else {
        w.message(1, |w| response(w, v));
    }
}

fn response(w: &mut Writer, v: &Value) {
    const RESPONSE: &[Field] = &[
        ("description", 1, Str),
        ("schema", 2, Msg(schema_item)),
        ("headers", 3, Msg(headers)),
        ("examples", 4, Msg(examples)),
        ("", 5, Vendor),
    ];
    fields(w, v, RESPONSE);
}

fn headers(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, header);
}

/// `Examples { repeated NamedAny additional_properties = 1 }`.
fn examples(w: &mut Writer, v: &Value) {
    for (k, x) in v.as_object().into_iter().flatten() {
        w.message(1, |w| {
            w.string(1, k);
            any(w, 2, x);
        });
    }
}

/// `SchemaItem` oneof: `Schema schema = 1` or `FileSchema file_schema = 2`. gnostic tries both and keeps
/// the file schema when it also matches, which needs `type: file`.
fn schema_item(w: &mut Writer, v: &Value) {
    if v.get("type").and_then(Value::as_str) == Some("file") {
        w.message(2, |w| file_schema(w, v));
    } else {
        w.message(1, |w| schema(w, v));
    }
}

fn file_schema(w: &mut Writer, v: &Value) {
    const FILE_SCHEMA: &[Field] = &[
        ("format", 1, Str),
        ("title", 2, Str),
        ("description", 3, Str),
        ("default", 4, Any),
        ("required", 5, Strings),
        ("type", 6, Str),
        ("readOnly", 7, Bool),
        ("externalDocs", 8, Msg(external_docs)),
        ("example", 9, Any),
        ("", 10, Vendor),
    ];
    fields(w, v, FILE_SCHEMA);
}

/// `Definitions { repeated NamedSchema additional_properties = 1 }`; `Properties` has the same shape.
fn definitions(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, schema);
}

fn parameter_definitions(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, parameter);
}

fn response_definitions(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, response);
}

const SCHEMA: &[Field] = &[
    ("$ref", 1, Str),
    ("format", 2, Str),
    ("title", 3, Str),
    ("description", 4, Str),
    ("default", 5, Any),
    ("multipleOf", 6, Double),
    ("maximum", 7, Double),
    ("exclusiveMaximum", 8, Bool),
    ("minimum", 9, Double),
    ("exclusiveMinimum", 10, Bool),
    ("maxLength", 11, Int64),
    ("minLength", 12, Int64),
    ("pattern", 13, Str),
    ("maxItems", 14, Int64),
    ("minItems", 15, Int64),
    ("uniqueItems", 16, Bool),
    ("maxProperties", 17, Int64),
    ("minProperties", 18, Int64),
    ("required", 19, Strings),
    ("enum", 20, Anys),
    ("additionalProperties", 21, Msg(additional_properties_item)),
    ("type", 22, Msg(type_item)),
    ("items", 23, Msg(items_item)),
    ("allOf", 24, Msgs(schema)),
    ("properties", 25, Msg(definitions)),
    ("discriminator", 26, Str),
    ("readOnly", 27, Bool),
    ("xml", 28, Msg(xml)),
    ("externalDocs", 29, Msg(external_docs)),
    ("example", 30, Any),
    ("", 31, Vendor),
];

fn schema(w: &mut Writer, v: &Value) {
    fields(w, v, SCHEMA);
}

/// `AdditionalPropertiesItem` oneof: `Schema schema = 1` or `bool boolean = 2`.
fn additional_properties_item(w: &mut Writer, v: &Value) {
    match v {
        Value::Bool(b) => w.bool_always(2, *b),
        Value::Object(_) => w.message(1, |w| schema(w, v)),
        _ => {}
    }
}

/// `TypeItem { repeated string value = 1 }`: one type, or a list of them.
fn type_item(w: &mut Writer, v: &Value) {
    match v {
        Value::String(s) => w.string_always(1, s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).for_each(|s| w.string_always(1, s)),
        _ => {}
    }
}

/// `ItemsItem { repeated Schema schema = 1 }`: Swagger 2.0 has one items schema.
fn items_item(w: &mut Writer, v: &Value) {
    match v {
        Value::Array(a) => a.iter().for_each(|s| w.message(1, |w| schema(w, s))),
        _ => w.message(1, |w| schema(w, v)),
    }
}

fn xml(w: &mut Writer, v: &Value) {
    const XML: &[Field] = &[
        ("name", 1, Str),
        ("namespace", 2, Str),
        ("prefix", 3, Str),
        ("attribute", 4, Bool),
        ("wrapped", 5, Bool),
        ("", 6, Vendor),
    ];
    fields(w, v, XML);
}

/// `SecurityDefinitions { repeated NamedSecurityDefinitionsItem additional_properties = 1 }`.
fn security_definitions(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, security_definitions_item);
}

/// `SecurityDefinitionsItem` oneof, by `type` (and `flow` for OAuth 2).
fn security_definitions_item(w: &mut Writer, v: &Value) {
    const BASIC: &[Field] = &[("type", 1, Str), ("description", 2, Str), ("", 3, Vendor)];
    const API_KEY: &[Field] =
        &[("type", 1, Str), ("name", 2, Str), ("in", 3, Str), ("description", 4, Str), ("", 5, Vendor)];
    const IMPLICIT: &[Field] = &[
        ("type", 1, Str),
        ("flow", 2, Str),
        ("scopes", 3, Msg(oauth2_scopes)),
        ("authorizationUrl", 4, Str),
        ("description", 5, Str),
        ("", 6, Vendor),
    ];
    // Password and application flows share a layout.
    const TOKEN: &[Field] = &[
        ("type", 1, Str),
        ("flow", 2, Str),
        ("scopes", 3, Msg(oauth2_scopes)),
        ("tokenUrl", 4, Str),
        ("description", 5, Str),
        ("", 6, Vendor),
    ];
    const ACCESS_CODE: &[Field] = &[
        ("type", 1, Str),
        ("flow", 2, Str),
        ("scopes", 3, Msg(oauth2_scopes)),
        ("authorizationUrl", 4, Str),
        ("tokenUrl", 5, Str),
        ("description", 6, Str),
        ("", 7, Vendor),
    ];
    let ty = v.get("type").and_then(Value::as_str);
    let flow = v.get("flow").and_then(Value::as_str);
    let (num, table) = match (ty, flow) {
        (Some("basic"), _) => (1, BASIC),
        (Some("apiKey"), _) => (2, API_KEY),
        (Some("oauth2"), Some("implicit")) => (3, IMPLICIT),
        (Some("oauth2"), Some("password")) => (4, TOKEN),
        (Some("oauth2"), Some("application")) => (5, TOKEN),
        (Some("oauth2"), Some("accessCode")) => (6, ACCESS_CODE),
        _ => return,
    };
    w.message(num, |w| fields(w, v, table));
}

/// `Oauth2Scopes { repeated NamedString additional_properties = 1 }`.
fn oauth2_scopes(w: &mut Writer, v: &Value) {
    for (k, x) in v.as_object().into_iter().flatten() {
        w.message(1, |w| {
            w.string(1, k);
            w.string(2, x.as_str().unwrap_or_default());
        });
    }
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties = 1 }`, each value a
/// `StringArray { repeated string value = 1 }`.
fn security_requirement(w: &mut Writer, v: &Value) {
    named(w, 1, v, every_key, |w, scopes| {
        for s in scopes.as_array().into_iter().flatten().filter_map(Value::as_str) {
            w.string_always(1, s);
        }
    });
}

#[cfg(test)]
#[path = "v2_proto_tests.rs"]
mod tests;
