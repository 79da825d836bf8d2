//! Round trip of the v2 protobuf through an independent decoder (prost-derived gnostic messages) back to JSON.

use prost::Message;
use serde_json::{Map, Value, json};

use super::encode;

/// gnostic-models `openapiv2/OpenAPIv2.proto`, the messages rkube's documents use, declared for prost.
// Oneofs hold their messages inline, as prost-build would generate them; size is no concern in a test.
#[allow(clippy::large_enum_variant)]
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Document {
        #[prost(string, tag = "1")]
        pub(super) swagger: String,
        #[prost(message, optional, tag = "2")]
        pub(super) info: Option<Info>,
        #[prost(string, tag = "3")]
        pub(super) host: String,
        #[prost(string, tag = "4")]
        pub(super) base_path: String,
        #[prost(string, repeated, tag = "5")]
        pub(super) schemes: Vec<String>,
        #[prost(string, repeated, tag = "6")]
        pub(super) consumes: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub(super) produces: Vec<String>,
        #[prost(message, optional, tag = "8")]
        pub(super) paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        pub(super) definitions: Option<Definitions>,
        #[prost(message, repeated, tag = "12")]
        pub(super) security: Vec<SecurityRequirement>,
        #[prost(message, optional, tag = "13")]
        pub(super) security_definitions: Option<SecurityDefinitions>,
        #[prost(message, repeated, tag = "16")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Info {
        #[prost(string, tag = "1")]
        pub(super) title: String,
        #[prost(string, tag = "2")]
        pub(super) version: String,
        #[prost(string, tag = "3")]
        pub(super) description: String,
        #[prost(message, repeated, tag = "7")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Any {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) value: Vec<u8>,
        #[prost(string, tag = "2")]
        pub(super) yaml: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedAny {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Paths {
        #[prost(message, repeated, tag = "1")]
        pub(super) vendor_extension: Vec<NamedAny>,
        #[prost(message, repeated, tag = "2")]
        pub(super) path: Vec<NamedPathItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedPathItem {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<PathItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PathItem {
        #[prost(string, tag = "1")]
        pub(super) r#ref: String,
        #[prost(message, optional, tag = "2")]
        pub(super) get: Option<Operation>,
        #[prost(message, optional, tag = "3")]
        pub(super) put: Option<Operation>,
        #[prost(message, optional, tag = "4")]
        pub(super) post: Option<Operation>,
        #[prost(message, optional, tag = "5")]
        pub(super) delete: Option<Operation>,
        #[prost(message, optional, tag = "6")]
        pub(super) options: Option<Operation>,
        #[prost(message, optional, tag = "7")]
        pub(super) head: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        pub(super) patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        pub(super) parameters: Vec<ParametersItem>,
        #[prost(message, repeated, tag = "10")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Operation {
        #[prost(string, repeated, tag = "1")]
        pub(super) tags: Vec<String>,
        #[prost(string, tag = "2")]
        pub(super) summary: String,
        #[prost(string, tag = "3")]
        pub(super) description: String,
        #[prost(string, tag = "5")]
        pub(super) operation_id: String,
        #[prost(string, repeated, tag = "6")]
        pub(super) produces: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub(super) consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        pub(super) parameters: Vec<ParametersItem>,
        #[prost(message, optional, tag = "9")]
        pub(super) responses: Option<Responses>,
        #[prost(string, repeated, tag = "10")]
        pub(super) schemes: Vec<String>,
        #[prost(bool, tag = "11")]
        pub(super) deprecated: bool,
        #[prost(message, repeated, tag = "13")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ParametersItem {
        #[prost(oneof = "ParametersItemOneof", tags = "1, 2")]
        pub(super) oneof: Option<ParametersItemOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum ParametersItemOneof {
        #[prost(message, tag = "1")]
        Parameter(Parameter),
        #[prost(message, tag = "2")]
        JsonReference(JsonReference),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct JsonReference {
        #[prost(string, tag = "1")]
        pub(super) r#ref: String,
        #[prost(string, tag = "2")]
        pub(super) description: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Parameter {
        #[prost(oneof = "ParameterOneof", tags = "1, 2")]
        pub(super) oneof: Option<ParameterOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum ParameterOneof {
        #[prost(message, tag = "1")]
        BodyParameter(BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(NonBodyParameter),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct BodyParameter {
        #[prost(string, tag = "1")]
        pub(super) description: String,
        #[prost(string, tag = "2")]
        pub(super) name: String,
        #[prost(string, tag = "3")]
        pub(super) r#in: String,
        #[prost(bool, tag = "4")]
        pub(super) required: bool,
        #[prost(message, optional, tag = "5")]
        pub(super) schema: Option<Schema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NonBodyParameter {
        #[prost(oneof = "NonBodyOneof", tags = "3, 4")]
        pub(super) oneof: Option<NonBodyOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum NonBodyOneof {
        #[prost(message, tag = "3")]
        Query(QueryParameterSubSchema),
        #[prost(message, tag = "4")]
        Path(PathParameterSubSchema),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct QueryParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub(super) required: bool,
        #[prost(string, tag = "2")]
        pub(super) r#in: String,
        #[prost(string, tag = "3")]
        pub(super) description: String,
        #[prost(string, tag = "4")]
        pub(super) name: String,
        #[prost(bool, tag = "5")]
        pub(super) allow_empty_value: bool,
        #[prost(string, tag = "6")]
        pub(super) r#type: String,
        #[prost(bool, tag = "20")]
        pub(super) unique_items: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PathParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub(super) required: bool,
        #[prost(string, tag = "2")]
        pub(super) r#in: String,
        #[prost(string, tag = "3")]
        pub(super) description: String,
        #[prost(string, tag = "4")]
        pub(super) name: String,
        #[prost(string, tag = "5")]
        pub(super) r#type: String,
        #[prost(bool, tag = "19")]
        pub(super) unique_items: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Responses {
        #[prost(message, repeated, tag = "1")]
        pub(super) response_code: Vec<NamedResponseValue>,
        #[prost(message, repeated, tag = "2")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedResponseValue {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<ResponseValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ResponseValue {
        #[prost(oneof = "ResponseValueOneof", tags = "1, 2")]
        pub(super) oneof: Option<ResponseValueOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum ResponseValueOneof {
        #[prost(message, tag = "1")]
        Response(Response),
        #[prost(message, tag = "2")]
        JsonReference(JsonReference),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Response {
        #[prost(string, tag = "1")]
        pub(super) description: String,
        #[prost(message, optional, tag = "2")]
        pub(super) schema: Option<SchemaItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SchemaItem {
        #[prost(oneof = "SchemaItemOneof", tags = "1")]
        pub(super) oneof: Option<SchemaItemOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum SchemaItemOneof {
        #[prost(message, tag = "1")]
        Schema(Schema),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Definitions {
        #[prost(message, repeated, tag = "1")]
        pub(super) additional_properties: Vec<NamedSchema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedSchema {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<Schema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Schema {
        #[prost(string, tag = "1")]
        pub(super) r#ref: String,
        #[prost(string, tag = "2")]
        pub(super) format: String,
        #[prost(string, tag = "3")]
        pub(super) title: String,
        #[prost(string, tag = "4")]
        pub(super) description: String,
        #[prost(message, optional, tag = "5")]
        pub(super) default: Option<Any>,
        #[prost(double, tag = "7")]
        pub(super) maximum: f64,
        #[prost(double, tag = "9")]
        pub(super) minimum: f64,
        #[prost(int64, tag = "11")]
        pub(super) max_length: i64,
        #[prost(int64, tag = "12")]
        pub(super) min_length: i64,
        #[prost(string, tag = "13")]
        pub(super) pattern: String,
        #[prost(int64, tag = "14")]
        pub(super) max_items: i64,
        #[prost(int64, tag = "15")]
        pub(super) min_items: i64,
        #[prost(bool, tag = "16")]
        pub(super) unique_items: bool,
        #[prost(string, repeated, tag = "19")]
        pub(super) required: Vec<String>,
        #[prost(message, repeated, tag = "20")]
        pub(super) r#enum: Vec<Any>,
        #[prost(message, optional, tag = "21")]
        pub(super) additional_properties: Option<AdditionalPropertiesItem>,
        #[prost(message, optional, tag = "22")]
        pub(super) r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        pub(super) items: Option<ItemsItem>,
        #[prost(message, repeated, tag = "24")]
        pub(super) all_of: Vec<Schema>,
        #[prost(message, optional, tag = "25")]
        pub(super) properties: Option<Definitions>,
        #[prost(bool, tag = "27")]
        pub(super) read_only: bool,
        #[prost(message, optional, tag = "30")]
        pub(super) example: Option<Any>,
        #[prost(message, repeated, tag = "31")]
        pub(super) vendor_extension: Vec<NamedAny>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct AdditionalPropertiesItem {
        #[prost(oneof = "AdditionalPropertiesOneof", tags = "1, 2")]
        pub(super) oneof: Option<AdditionalPropertiesOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum AdditionalPropertiesOneof {
        #[prost(message, tag = "1")]
        Schema(Box<Schema>),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        pub(super) value: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        pub(super) schema: Vec<Schema>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SecurityDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub(super) additional_properties: Vec<NamedSecurityDefinitionsItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedSecurityDefinitionsItem {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<SecurityDefinitionsItem>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SecurityDefinitionsItem {
        #[prost(oneof = "SecurityOneof", tags = "2")]
        pub(super) oneof: Option<SecurityOneof>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum SecurityOneof {
        #[prost(message, tag = "2")]
        ApiKey(ApiKeySecurity),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ApiKeySecurity {
        #[prost(string, tag = "1")]
        pub(super) r#type: String,
        #[prost(string, tag = "2")]
        pub(super) name: String,
        #[prost(string, tag = "3")]
        pub(super) r#in: String,
        #[prost(string, tag = "4")]
        pub(super) description: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SecurityRequirement {
        #[prost(message, repeated, tag = "1")]
        pub(super) additional_properties: Vec<NamedStringArray>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct NamedStringArray {
        #[prost(string, tag = "1")]
        pub(super) name: String,
        #[prost(message, optional, tag = "2")]
        pub(super) value: Option<StringArray>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct StringArray {
        #[prost(string, repeated, tag = "1")]
        pub(super) value: Vec<String>,
    }
}

/// Back to JSON: an object builder that leaves out what proto3 leaves out.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn str(mut self, k: &str, v: &str) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn bool(mut self, k: &str, v: bool) -> Self {
        if v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn int(mut self, k: &str, v: i64) -> Self {
        if v != 0 {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn float(mut self, k: &str, v: f64) -> Self {
        if v != 0.0 {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn strings(mut self, k: &str, v: &[String]) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn value(mut self, k: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn vendor(mut self, ext: &[pb::NamedAny]) -> Self {
        for e in ext {
            self.0.insert(e.name.clone(), any(e.value.as_ref()));
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn any(a: Option<&pb::Any>) -> Value {
    let yaml = a.map(|a| a.yaml.as_str()).unwrap_or_default();
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("Any.yaml {yaml:?}: {e}"))
}

fn schema(s: &pb::Schema) -> Value {
    let additional = s.additional_properties.as_ref().and_then(|a| a.oneof.as_ref()).map(|a| match a {
        pb::AdditionalPropertiesOneof::Schema(s) => schema(s),
        pb::AdditionalPropertiesOneof::Boolean(b) => json!(b),
    });
    let ty = s.r#type.as_ref().map(|t| match t.value.as_slice() {
        [one] => json!(one),
        many => json!(many),
    });
    let items = s.items.as_ref().map(|i| {
        assert_eq!(i.schema.len(), 1);
        schema(&i.schema[0])
    });
    let all_of = (!s.all_of.is_empty()).then(|| s.all_of.iter().map(schema).collect());
    let properties = s.properties.as_ref().map(named_schemas);
    let enums = (!s.r#enum.is_empty()).then(|| s.r#enum.iter().map(|a| any(Some(a))).collect());
    Obj::default()
        .str("$ref", &s.r#ref)
        .str("format", &s.format)
        .str("title", &s.title)
        .str("description", &s.description)
        .value("default", s.default.as_ref().map(|a| any(Some(a))))
        .float("maximum", s.maximum)
        .float("minimum", s.minimum)
        .int("maxLength", s.max_length)
        .int("minLength", s.min_length)
        .str("pattern", &s.pattern)
        .int("maxItems", s.max_items)
        .int("minItems", s.min_items)
        .bool("uniqueItems", s.unique_items)
        .strings("required", &s.required)
        .value("enum", enums)
        .value("additionalProperties", additional)
        .value("type", ty)
        .value("items", items)
        .value("allOf", all_of)
        .value("properties", properties)
        .bool("readOnly", s.read_only)
        .value("example", s.example.as_ref().map(|a| any(Some(a))))
        .vendor(&s.vendor_extension)
        .done()
}

fn named_schemas(d: &pb::Definitions) -> Value {
    Value::Object(
        d.additional_properties.iter().map(|n| (n.name.clone(), schema(n.value.as_ref().expect("value")))).collect(),
    )
}

fn parameter(p: &pb::ParametersItem) -> Value {
    match p.oneof.as_ref().expect("parameters item") {
        pb::ParametersItemOneof::JsonReference(r) => Obj::default().str("$ref", &r.r#ref).done(),
        pb::ParametersItemOneof::Parameter(p) => match p.oneof.as_ref().expect("parameter") {
            pb::ParameterOneof::BodyParameter(b) => Obj::default()
                .str("name", &b.name)
                .str("in", &b.r#in)
                .bool("required", b.required)
                .str("description", &b.description)
                .value("schema", b.schema.as_ref().map(schema))
                .done(),
            pb::ParameterOneof::NonBodyParameter(n) => match n.oneof.as_ref().expect("non-body parameter") {
                pb::NonBodyOneof::Query(q) => Obj::default()
                    .str("name", &q.name)
                    .str("in", &q.r#in)
                    .bool("required", q.required)
                    .str("description", &q.description)
                    .str("type", &q.r#type)
                    .bool("uniqueItems", q.unique_items)
                    .done(),
                pb::NonBodyOneof::Path(q) => Obj::default()
                    .str("name", &q.name)
                    .str("in", &q.r#in)
                    .bool("required", q.required)
                    .str("description", &q.description)
                    .str("type", &q.r#type)
                    .bool("uniqueItems", q.unique_items)
                    .done(),
            },
        },
    }
}

fn operation(o: &pb::Operation) -> Value {
    let responses = o.responses.as_ref().map(|r| {
        Value::Object(
            r.response_code
                .iter()
                .map(|n| {
                    let v = match n.value.as_ref().and_then(|v| v.oneof.as_ref()).expect("response") {
                        pb::ResponseValueOneof::Response(r) => Obj::default()
                            .str("description", &r.description)
                            .value(
                                "schema",
                                r.schema
                                    .as_ref()
                                    .and_then(|s| s.oneof.as_ref())
                                    .map(|pb::SchemaItemOneof::Schema(s)| schema(s)),
                            )
                            .done(),
                        pb::ResponseValueOneof::JsonReference(r) => Obj::default().str("$ref", &r.r#ref).done(),
                    };
                    (n.name.clone(), v)
                })
                .collect(),
        )
    });
    Obj::default()
        .strings("tags", &o.tags)
        .str("summary", &o.summary)
        .str("description", &o.description)
        .str("operationId", &o.operation_id)
        .strings("produces", &o.produces)
        .strings("consumes", &o.consumes)
        .value("parameters", Some(Value::Array(o.parameters.iter().map(parameter).collect())))
        .value("responses", responses)
        .strings("schemes", &o.schemes)
        .bool("deprecated", o.deprecated)
        .vendor(&o.vendor_extension)
        .done()
}

fn path_item(p: &pb::PathItem) -> Value {
    let ops = [
        ("get", &p.get),
        ("put", &p.put),
        ("post", &p.post),
        ("delete", &p.delete),
        ("options", &p.options),
        ("head", &p.head),
        ("patch", &p.patch),
    ];
    let mut obj = Obj::default().str("$ref", &p.r#ref);
    for (k, op) in ops {
        obj = obj.value(k, op.as_ref().map(operation));
    }
    obj.value("parameters", Some(Value::Array(p.parameters.iter().map(parameter).collect())))
        .vendor(&p.vendor_extension)
        .done()
}

fn document(d: &pb::Document) -> Value {
    let info = d.info.as_ref().map(|i| {
        Obj::default()
            .str("title", &i.title)
            .str("version", &i.version)
            .str("description", &i.description)
            .vendor(&i.vendor_extension)
            .done()
    });
    let paths = d.paths.as_ref().map(|p| {
        let paths = p.path.iter().map(|n| (n.name.clone(), path_item(n.value.as_ref().expect("path"))));
        Obj(paths.collect()).vendor(&p.vendor_extension).done()
    });
    let security_definitions = d.security_definitions.as_ref().map(|s| {
        Value::Object(
            s.additional_properties
                .iter()
                .map(|n| {
                    let pb::SecurityOneof::ApiKey(k) =
                        n.value.as_ref().and_then(|v| v.oneof.as_ref()).expect("security definition");
                    let v = Obj::default()
                        .str("type", &k.r#type)
                        .str("name", &k.name)
                        .str("in", &k.r#in)
                        .str("description", &k.description)
                        .done();
                    (n.name.clone(), v)
                })
                .collect(),
        )
    });
    let security: Vec<Value> = d
        .security
        .iter()
        .map(|r| {
            Value::Object(
                r.additional_properties
                    .iter()
                    .map(|n| (n.name.clone(), json!(n.value.as_ref().expect("scopes").value)))
                    .collect(),
            )
        })
        .collect();
    Obj::default()
        .str("swagger", &d.swagger)
        .value("info", info)
        .str("host", &d.host)
        .str("basePath", &d.base_path)
        .strings("schemes", &d.schemes)
        .strings("consumes", &d.consumes)
        .strings("produces", &d.produces)
        .value("paths", paths)
        .value("definitions", d.definitions.as_ref().map(named_schemas))
        .value("securityDefinitions", security_definitions)
        .value("security", (!security.is_empty()).then_some(Value::Array(security)))
        .vendor(&d.vendor_extension)
        .done()
}

fn decode(bytes: &[u8]) -> pb::Document {
    pb::Document::decode(bytes).expect("a valid openapi.v2.Document")
}

/// The JSON as proto3 keeps it: `false`, `""`, `0` and `[]` fields are indistinguishable from absent ones
/// (upstream's protobuf drops them too), except a `false` `additionalProperties` (a oneof member) and
/// values carried as YAML text (defaults, enums, examples, vendor extensions).
fn proto3_view(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, x)| {
                    let kept_as_text = k.as_str() == "additionalProperties" || k.starts_with("x-");
                    let x = *x;
                    kept_as_text || !matches!(x, Value::Bool(false)) && *x != "" && *x != 0 && *x != json!([])
                })
                .map(|(k, x)| {
                    let text = ["default", "enum", "example"].contains(&k.as_str()) || k.starts_with("x-");
                    (k.clone(), if text { x.clone() } else { proto3_view(x) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(proto3_view).collect()),
        _ => v.clone(),
    }
}

/// Lists where two JSON values differ (at most `limit`), for a readable failure.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if path.is_empty() {
        return differences("/", &proto3_view(a), &proto3_view(b), out);
    }
    if out.len() >= 20 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                differences(&format!("{path}/{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}/{i}"), va, vb, out);
            }
        }
        _ => out.push(format!("{path}: {a} != {b}")),
    }
}

#[test]
fn builtin_document_round_trips() {
    let json = crate::v2();
    let bytes = crate::v2_protobuf().bytes();
    let decoded = decode(bytes);
    let back = document(&decoded);
    let mut diffs = Vec::new();
    differences("", json, &back, &mut diffs);
    assert!(diffs.is_empty(), "{} differences, first: {diffs:#?}", diffs.len());

    // The facts kubectl reads, straight from the messages.
    let defs = &decoded.definitions.as_ref().expect("definitions").additional_properties;
    assert_eq!(defs.len(), json["definitions"].as_object().expect("definitions").len());
    let def = |name: &str| defs.iter().find(|d| d.name == name).and_then(|d| d.value.as_ref()).expect(name);
    let pod = def("io.k8s.api.core.v1.Pod");
    let props: Vec<&str> =
        pod.properties.as_ref().expect("properties").additional_properties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(props, ["apiVersion", "kind", "metadata", "spec", "status"]);
    let ext = |s: &pb::Schema, name: &str| -> String {
        s.vendor_extension
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_ref())
            .map(|a| a.yaml.clone())
            .expect(name)
    };
    assert_eq!(
        ext(def("io.k8s.api.apps.v1.Deployment"), "x-kubernetes-group-version-kind"),
        "- group: apps\n  kind: Deployment\n  version: v1\n"
    );
    let containers = def("io.k8s.api.core.v1.PodSpec")
        .properties
        .as_ref()
        .and_then(|p| p.additional_properties.iter().find(|p| p.name == "containers"))
        .and_then(|p| p.value.as_ref())
        .expect("containers");
    assert_eq!(ext(containers, "x-kubernetes-patch-strategy"), "merge\n");
    assert_eq!(ext(containers, "x-kubernetes-patch-merge-key"), "name\n");
    let labels = def("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        .properties
        .as_ref()
        .and_then(|p| p.additional_properties.iter().find(|p| p.name == "labels"))
        .and_then(|p| p.value.as_ref())
        .expect("labels");
    let Some(pb::AdditionalPropertiesOneof::Schema(value)) =
        labels.additional_properties.as_ref().and_then(|a| a.oneof.as_ref())
    else {
        panic!("labels: {labels:?}")
    };
    assert_eq!(value.r#type.as_ref().map(|t| t.value.clone()), Some(vec!["string".to_owned()]));

    // Same input, same bytes.
    assert_eq!(encode(json), bytes);
}

#[test]
fn encodes_every_variant_gnostic_has() {
    let doc = json!({
        "swagger": "2.0",
        "info": {"title": "T", "version": "1", "x-info": 1},
        "paths": {
            "x-paths": "p",
            "/a/{name}": {
                "parameters": [
                    {"$ref": "#/parameters/pretty"},
                    {"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true},
                ],
                "get": {
                    "operationId": "getA",
                    "deprecated": true,
                    "parameters": [
                        {"name": "q", "in": "query", "type": "string", "uniqueItems": true},
                        {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/A"}},
                    ],
                    "responses": {
                        "200": {"description": "OK", "schema": {"type": "string"}},
                        "404": {"$ref": "#/responses/missing"},
                    },
                    "x-kubernetes-action": "get",
                },
            },
        },
        "definitions": {
            "A": {
                "type": ["object", "null"],
                "required": ["m"],
                "properties": {
                    "m": {"type": "object", "additionalProperties": false, "default": {"a": [1, "on"]}},
                    "n": {"type": "object", "additionalProperties": {"type": "integer", "format": "int32"}},
                    "l": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["a", "yes", ""]},
                        "maxItems": 3,
                        "minItems": -1,
                        "uniqueItems": true,
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["k", "v"],
                    },
                    "i": {"allOf": [{"$ref": "#/definitions/B"}], "x-kubernetes-int-or-string": true, "maximum": 2.5, "minimum": -1.0},
                    "e": {"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true, "readOnly": true, "example": null},
                },
                "x-kubernetes-map-type": "atomic",
            },
        },
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header", "description": "d"}},
        "security": [{"BearerToken": []}],
        "x-doc": {"k": ["v"]},
    });
    let back = document(&decode(&encode(&doc)));
    let mut diffs = Vec::new();
    differences("", &doc, &back, &mut diffs);
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn custom_resources_change_the_protobuf() {
    let mut docs = crate::Documents::new();
    let builtin = docs.v2_protobuf();
    assert!(std::ptr::eq(builtin.bytes(), crate::v2_protobuf().bytes()), "the built-in encoding is shared");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
            }],
        },
    });
    docs.apply_crd(&crd).expect("crd");
    let with_crd = docs.v2_protobuf();
    assert_ne!(with_crd.hash(), builtin.hash());
    let decoded = decode(with_crd.bytes());
    let defs = &decoded.definitions.as_ref().expect("definitions").additional_properties;
    assert!(defs.iter().any(|d| d.name == "com.example.v1.Widget"), "Widget defined");
    let mut diffs = Vec::new();
    differences("", docs.v2().value(), &document(&decoded), &mut diffs);
    assert!(diffs.is_empty(), "{diffs:#?}");
}
