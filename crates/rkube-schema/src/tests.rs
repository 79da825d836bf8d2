//! Tests of the whole crate on a realistic CronTab schema: defaults, each violation's cause, pruning, schema checks.

use rkube_apimachinery::Cause;
use serde_json::{Value, json};

use crate::{Schema, unknown_field_warning};

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["cronSpec", "image"],
                "properties": {
                    "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                    "image": {"type": "string", "minLength": 1, "maxLength": 20},
                    "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10, "default": 1},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "schedule": {"type": "string", "format": "date-time"},
                    "ratio": {"type": "number", "multipleOf": 0.5, "maximum": 2, "exclusiveMaximum": true},
                    "containers": {
                        "type": "array",
                        "maxItems": 3,
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name", "image"],
                            "properties": {
                                "name": {"type": "string"},
                                "image": {"type": "string"},
                                "pullPolicy": {"type": "string", "default": "IfNotPresent"}
                            }
                        }
                    },
                    "tags": {"type": "array", "minItems": 1, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
                    "config": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"mode": {"type": "string", "default": "auto"}}
                    },
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "note": {"type": "string", "nullable": true}
                }
            },
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
        }
    })
}

fn schema() -> Schema {
    match Schema::from_crd_version_at(&crontab_schema(), "spec.versions[0].schema.openAPIV3Schema") {
        Ok(s) => s,
        Err(causes) => panic!("CronTab schema rejected: {causes:#?}"),
    }
}

fn valid_crontab() -> Value {
    json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "my-cron", "namespace": "default"},
        "spec": {
            "cronSpec": "*/5 * * * *",
            "image": "my-cron-image",
            "color": "red",
            "port": "http",
            "schedule": "2024-05-01T10:00:00Z",
            "ratio": 1.5,
            "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y", "pullPolicy": "Always"}],
            "tags": ["x", "y"],
            "labels": {"team": "infra"},
            "config": {"anything": {"goes": [1, 2]}},
            "template": {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}},
            "note": null
        }
    })
}

/// The causes of validating the valid CronTab with `spec.<field>` replaced.
fn causes_with(field: &str, value: Value) -> Vec<Cause> {
    let mut obj = valid_crontab();
    obj["spec"][field] = value;
    schema().validate(&obj)
}

fn lines(causes: &[Cause]) -> Vec<String> {
    causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect()
}

fn one(causes: &[Cause]) -> String {
    assert_eq!(causes.len(), 1, "expected one cause, got {:#?}", lines(causes));
    lines(causes).remove(0)
}

#[test]
fn valid_object_passes_with_defaults_applied() {
    let s = schema();
    let mut obj = valid_crontab();
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"]["replicas"], json!(1));
    assert_eq!(obj["spec"]["containers"][0]["pullPolicy"], json!("IfNotPresent"));
    assert_eq!(obj["spec"]["containers"][1]["pullPolicy"], json!("Always"));
    assert_eq!(obj["spec"]["config"]["mode"], json!("auto"));
    assert_eq!(obj["spec"]["note"], Value::Null, "nullable nulls stay");
    assert_eq!(s.validate(&obj), vec![]);
    assert!(!s.has_validation_rules());
}

#[test]
fn defaults_reach_into_defaulted_objects_and_replace_non_nullable_nulls() {
    let s = Schema::from_crd_version(&json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "size": {"type": "integer", "default": 3},
                    "mode": {"type": "string"},
                    "byName": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}}
                }
            }
        }
    }))
    .expect("schema");
    let mut obj = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"], json!({"size": 3}));
    let mut obj = json!({"spec": {"size": null, "mode": null, "byName": {"a": null, "b": "y"}}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"], json!({"size": 3, "byName": {"a": "x", "b": "y"}}));
}

#[test]
fn type_mismatches() {
    assert_eq!(
        one(&causes_with("replicas", json!("string"))),
        r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
    );
    let c = causes_with("replicas", json!(1.5));
    // With a format, kube-openapi names the format as the expected type and the value's Go type as the data.
    assert_eq!(
        one(&c),
        r#"spec.replicas: Invalid value: "float64": spec.replicas in body must be of type int32: "float64""#
    );
    assert_eq!(c[0].reason, "FieldValueTypeInvalid");
    assert_eq!(
        one(&causes_with("cronSpec", json!(1.5))),
        r#"spec.cronSpec: Invalid value: "number": spec.cronSpec in body must be of type string: "number""#
    );
    assert_eq!(causes_with("replicas", json!(2.0)), vec![], "an integral float is an integer");
    assert_eq!(
        one(&causes_with("image", Value::Null)),
        r#"spec.image: Invalid value: "null": spec.image in body must be of type string: "null""#
    );
    assert_eq!(causes_with("note", Value::Null), vec![]);
}

#[test]
fn int_or_string_reports_its_anyof_like_upstream() {
    assert_eq!(causes_with("port", json!(8080)), vec![]);
    assert_eq!(
        lines(&causes_with("port", json!(true))),
        vec![
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            r#"spec.port: Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#,
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer: "boolean""#,
        ]
    );
}

#[test]
fn numeric_bounds() {
    assert_eq!(
        one(&causes_with("replicas", json!(11))),
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    );
    assert_eq!(
        one(&causes_with("replicas", json!(0))),
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    );
    assert_eq!(
        one(&causes_with("ratio", json!(2))),
        "spec.ratio: Invalid value: 2: spec.ratio in body should be less than 2"
    );
    assert_eq!(
        one(&causes_with("ratio", json!(0.7))),
        "spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"
    );
    assert_eq!(
        lines(&causes_with("replicas", json!(3_000_000_000_i64))),
        vec![
            r#"spec.replicas: Invalid value: "": Checked value must be of type integer with format int32 in spec.replicas"#,
            "spec.replicas: Invalid value: 3000000000: spec.replicas in body should be less than or equal to 10",
        ]
    );
}

#[test]
fn strings_enums_and_formats() {
    let c = causes_with("color", json!("pink"));
    assert_eq!(one(&c), r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#);
    assert_eq!(c[0].reason, "FieldValueNotSupported");
    assert_eq!(
        one(&causes_with("cronSpec", json!("every minute"))),
        r#"spec.cronSpec: Invalid value: "every minute": spec.cronSpec in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#
    );
    let c = causes_with("image", json!("a-very-long-image-name-indeed"));
    assert_eq!(one(&c), "spec.image: Too long: may not be more than 20 bytes");
    assert_eq!(c[0].reason, "FieldValueTooLong");
    assert_eq!(
        one(&causes_with("image", json!(""))),
        r#"spec.image: Invalid value: "": spec.image in body should be at least 1 chars long"#
    );
    assert_eq!(
        one(&causes_with("schedule", json!("yesterday"))),
        r#"spec.schedule: Invalid value: "yesterday": spec.schedule in body must be of type date-time: "yesterday""#
    );
}

#[test]
fn required_fields_at_every_depth() {
    let mut obj = valid_crontab();
    obj["spec"].as_object_mut().map(|m| m.remove("image"));
    obj["spec"]["containers"] = json!([{"name": "a", "image": "x"}, {"image": "y", "name": "b"}, {"name": "c"}]);
    let c = schema().validate(&obj);
    assert_eq!(lines(&c), vec!["spec.containers[2].image: Required value", "spec.image: Required value"]);
    assert_eq!(c[0].reason, "FieldValueRequired");
    let c = schema().validate(&json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "spec": {}}));
    assert_eq!(lines(&c), vec!["spec.cronSpec: Required value", "spec.image: Required value"]);
}

#[test]
fn counts_and_list_types() {
    let four: Vec<Value> = (0..4).map(|i| json!({"name": format!("c{i}"), "image": "x"})).collect();
    let c = causes_with("containers", Value::from(four));
    assert_eq!(one(&c), "spec.containers: Too many: 4: must have at most 3 items");
    assert_eq!(c[0].reason, "FieldValueTooMany");
    assert_eq!(
        one(&causes_with("containers", json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]))),
        r#"spec.containers[1]: Duplicate value: {"name":"a"}"#
    );
    assert_eq!(one(&causes_with("tags", json!(["x", "y", "x", "x"]))), r#"spec.tags[2]: Duplicate value: "x""#);
    assert_eq!(
        one(&causes_with("tags", json!([]))),
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
    );
    assert_eq!(
        one(&causes_with("labels", json!({"a": "1", "b": "2", "c": "3"}))),
        "spec.labels: Too many: 3: must have at most 2 items"
    );
    assert_eq!(
        one(&causes_with("labels", json!({"a": 1}))),
        r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#
    );
}

#[test]
fn embedded_resources_need_type_meta() {
    assert_eq!(
        lines(&causes_with("template", json!({"spec": {}}))),
        vec!["spec.template.apiVersion: Required value", "spec.template.kind: Required value"]
    );
    assert_eq!(
        one(&causes_with("template", json!({"apiVersion": "a/b/c", "kind": "Pod"}))),
        r#"spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#
    );
}

#[test]
fn pruning_keeps_meta_and_preserved_fields() {
    let s = schema();
    let mut obj = valid_crontab();
    obj["spec"]["foo"] = json!(1);
    obj["spec"]["containers"][0]["extra"] = json!({"x": 1});
    obj["spec"]["config"]["mode"] = json!("manual");
    obj["spec"]["template"]["metadata"] = json!({"name": "t", "whatever": true});
    obj["topLevel"] = json!(true);
    obj["metadata"]["unknownMeta"] = json!("kept: metadata is validated as ObjectMeta elsewhere");
    let before = obj.clone();
    let pruned = s.prune(&mut obj);
    assert_eq!(pruned, vec!["spec.containers[0].extra", "spec.foo", "topLevel"]);
    assert_eq!(unknown_field_warning(&pruned[1]), r#"unknown field "spec.foo""#);
    let mut expected = before;
    expected["spec"].as_object_mut().map(|m| m.remove("foo"));
    expected["spec"]["containers"][0].as_object_mut().map(|m| m.remove("extra"));
    expected.as_object_mut().map(|m| m.remove("topLevel"));
    assert_eq!(obj, expected);
    assert_eq!(s.prune(&mut obj), Vec::<String>::new(), "pruning is idempotent");
}

#[test]
fn pruning_inside_preserved_subtrees_still_applies_known_schemas() {
    let s = Schema::from_crd_version(&json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"strict": {"type": "object", "properties": {"a": {"type": "string"}}}}
            }
        }
    }))
    .expect("schema");
    let mut obj = json!({"spec": {"free": {"x": 1}, "strict": {"a": "1", "b": 2}}});
    assert_eq!(s.prune(&mut obj), vec!["spec.strict.b"]);
    assert_eq!(obj, json!({"spec": {"free": {"x": 1}, "strict": {"a": "1"}}}));
}

#[test]
fn junctors_validate_values() {
    let s = Schema::from_crd_version(&json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "n": {"type": "integer"}},
                "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
                "not": {"properties": {"n": {"minimum": 5}}}
            }
        }
    }))
    .expect("schema");
    assert_eq!(s.validate(&json!({"spec": {"a": "x", "n": 1}})), vec![]);
    assert_eq!(
        lines(&s.validate(&json!({"spec": {"a": "x", "b": "y", "n": 1}}))),
        vec![
            r#"spec: Invalid value: "": "spec" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        lines(&s.validate(&json!({"spec": {"a": "x", "n": 7}}))),
        vec![r#"spec: Invalid value: "": "spec" must not validate the schema (not)"#]
    );
}

fn rejected(schema: Value) -> Vec<String> {
    match Schema::from_crd_version_at(&schema, "spec.versions[0].schema.openAPIV3Schema") {
        Ok(_) => panic!("schema accepted: {schema}"),
        Err(c) => lines(&c),
    }
}

const P: &str = "spec.versions[0].schema.openAPIV3Schema";

#[test]
fn non_structural_schemas_are_rejected() {
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}})),
        vec![format!("{P}.properties[spec].type: Required value: must not be empty for specified object fields")]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"spec": {"type": "array"}}})),
        vec![format!("{P}.properties[spec].items: Required value: must be specified")]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}})),
        vec![format!(
            "{P}.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        )]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string"}}, "anyOf": [{"type": "object", "properties": {"b": {"minLength": 1}}}]}}})),
        vec![format!("{P}.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural")]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"name": {"type": "string", "maxLength": 10}, "labels": {"type": "object"}}}}})),
        vec![format!(
            "{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        )]
    );
    assert_eq!(
        rejected(json!({"type": "array", "items": {"type": "string"}})),
        vec![format!(r#"{P}.type: Invalid value: "array": must be object at the root"#)]
    );
    assert_eq!(
        rejected(json!({"type": "object", "anyOf": [{"properties": {"ghost": {"minLength": 1}}}]})),
        vec![format!("{P}.properties[ghost]: Required value: because it is defined in {P}.anyOf[0].properties[ghost]")]
    );
}

#[test]
fn crd_rules_beyond_structurality() {
    assert_eq!(
        rejected(
            json!({"type": "object", "properties": {"s": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}}})
        ),
        vec![format!(
            "{P}.properties[s].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        )]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"s": {"type": "strin"}}})),
        vec![format!(
            r#"{P}.properties[s].type: Unsupported value: "strin": supported values: "array", "boolean", "integer", "number", "object", "string""#
        )]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "(unclosed"}}})),
        vec![format!(
            r#"{P}.properties[s].pattern: Invalid value: "(unclosed": must be a valid regular expression, but isn't: regex parse error: (unclosed ^ error: unclosed group"#
        )]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"s": {"type": "string", "$ref": "#/x"}}})),
        vec![format!("{P}.properties[s].$ref: Forbidden: $ref is not supported")]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"s": {"type": "array", "x-kubernetes-list-type": "map",
            "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}})),
        vec![format!(
            "{P}.properties[s].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        )]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})),
        vec![format!("{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata")]
    );
}

#[test]
fn defaults_must_validate_and_be_pruned() {
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 5, "default": 7}}})),
        vec![format!("{P}.properties[n].default: Invalid value: 7:  in body should be less than or equal to 5")]
    );
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"o": {"type": "object",
            "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}}}})),
        vec![format!(r#"{P}.properties[o].default: Invalid value: {{"a":"x","b":1}}: must not have unknown fields"#)]
    );
}

#[test]
fn malformed_keywords_are_reported() {
    assert_eq!(
        rejected(json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": "ten"}}})),
        vec![format!(r#"{P}.properties[s].maxLength: Invalid value: "ten": must be an integer"#)]
    );
}

#[test]
fn validation_rules_are_noted_not_enforced() {
    let s = Schema::from_crd_version(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}],
            "properties": {"a": {"type": "integer"}}}}
    }))
    .expect("schema");
    assert!(s.has_validation_rules());
    assert_eq!(s.validate(&json!({"spec": {"a": -1}})), vec![]);
}
