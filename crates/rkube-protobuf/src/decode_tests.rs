//! Unit tests of the decoder: each special JSON form, wire-level rules, and hostile input.

use serde_json::{Value, json};

use super::decode_message;
use crate::DecodeError;
use crate::table::message_by_name;
use crate::wire::{put_key, put_len, put_varint};

fn msg(name: &str) -> u16 {
    message_by_name(name).unwrap_or_else(|| panic!("{name} not in the table"))
}

fn meta(name: &str) -> u16 {
    msg(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{name}"))
}

fn decode(index: u16, bytes: &[u8]) -> Value {
    decode_message(index, bytes, 0).unwrap_or_else(|e| panic!("{e}"))
}

fn varint(tag: u32, v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    put_key(&mut b, tag, 0);
    put_varint(&mut b, v);
    b
}

fn len(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_len(&mut b, tag, bytes);
    b
}

#[test]
fn time_is_rfc3339_seconds_and_null_when_zero() {
    let t = meta("Time");
    assert_eq!(decode(t, &[]), Value::Null);
    assert_eq!(decode(t, &[varint(1, 1_714_557_600), varint(2, 999)].concat()), json!("2024-05-01T10:00:00Z"));
    // Present but zero is the epoch, not the zero time: Go's Unmarshal only treats no bytes as zero.
    assert_eq!(decode(t, &varint(1, 0)), json!("1970-01-01T00:00:00Z"));
    assert!(matches!(decode_message(t, &varint(1, 300_000_000_000), 0), Err(DecodeError::Unrepresentable { .. })));
}

#[test]
fn micro_time_has_six_digits() {
    let t = meta("MicroTime");
    assert_eq!(decode(t, &[]), Value::Null);
    assert_eq!(
        decode(t, &[varint(1, 1_714_557_600), varint(2, 123_456_789)].concat()),
        json!("2024-05-01T10:00:00.123456Z")
    );
    assert_eq!(decode(t, &varint(1, 1_714_557_600)), json!("2024-05-01T10:00:00.000000Z"));
}

#[test]
fn duration_is_go_duration_string() {
    let d = meta("Duration");
    assert_eq!(decode(d, &varint(1, 3_600_000_000_000)), json!("1h0m0s"));
    assert_eq!(decode(d, &[]), json!("0s"));
    assert_eq!(decode(d, &varint(1, (-1_500_000_000i64) as u64)), json!("-1.5s"));
}

#[test]
fn quantity_is_its_string() {
    let q = msg("k8s.io.apimachinery.pkg.api.resource.Quantity");
    assert_eq!(decode(q, &len(1, b"100m")), json!("100m"));
    assert_eq!(decode(q, &[]), json!("0"));
}

#[test]
fn int_or_string_is_number_or_string() {
    let i = msg("k8s.io.apimachinery.pkg.util.intstr.IntOrString");
    assert_eq!(decode(i, &[varint(1, 0), varint(2, 1)].concat()), json!(1));
    assert_eq!(decode(i, &[varint(1, 1), varint(2, 0), len(3, b"25%")].concat()), json!("25%"));
    assert_eq!(decode(i, &[]), json!(0));
    assert_eq!(decode(i, &[varint(1, 0), varint(2, (-3i64) as u64)].concat()), json!(-3));
    assert!(matches!(decode_message(i, &varint(1, 7), 0), Err(DecodeError::Unrepresentable { .. })));
}

#[test]
fn raw_extension_embeds_json_or_a_protobuf_object() {
    let event = meta("WatchEvent");
    let raw = len(1, br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}"#);
    assert_eq!(
        decode(event, &[len(1, b"ADDED"), len(2, &raw)].concat()),
        json!({"type": "ADDED", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}}})
    );

    // A protobuf client embeds the object as another k8s\0 envelope.
    let type_meta = [len(1, b"v1"), len(2, b"ConfigMap")].concat();
    let config_map = len(2, &[len(1, b"k"), len(2, b"v")].concat());
    let nested = [b"k8s\0".as_slice(), &len(1, &type_meta), &len(2, &config_map)].concat();
    assert_eq!(
        decode(event, &[len(1, b"ADDED"), len(2, &len(1, &nested))].concat()),
        json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}})
    );

    let ext = msg("k8s.io.apimachinery.pkg.runtime.RawExtension");
    assert_eq!(decode(ext, &[]), Value::Null);
    assert!(matches!(decode_message(ext, &len(1, b"{not json"), 0), Err(DecodeError::EmbeddedJson { field: 1, .. })));
}

#[test]
fn fields_v1_and_verbs_and_group_version() {
    let entry = meta("ManagedFieldsEntry");
    let fields = len(1, br#"{"f:metadata":{"f:labels":{}}}"#);
    assert_eq!(
        decode(entry, &[len(1, b"kubectl"), len(2, b"Update"), len(6, b"FieldsV1"), len(7, &fields)].concat()),
        json!({"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}})
    );

    let resource = meta("APIResource");
    let verbs = [len(1, b"get"), len(1, b"list")].concat();
    assert_eq!(
        decode(resource, &[len(1, b"pods"), varint(2, 1), len(3, b"Pod"), len(4, &verbs), len(6, b"")].concat()),
        json!({"name": "pods", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"], "singularName": ""})
    );

    let gv = meta("GroupVersion");
    assert_eq!(decode(gv, &[len(1, b"apps"), len(2, b"v1")].concat()), json!("apps/v1"));
    assert_eq!(decode(gv, &len(2, b"v1")), json!("v1"));
}

#[test]
fn extra_values_are_arrays_in_a_map() {
    let spec = msg("k8s.io.api.authorization.v1.SubjectAccessReviewSpec");
    let extra = [len(1, b"scopes"), len(2, &[len(1, b"a"), len(1, b"b")].concat())].concat();
    assert_eq!(
        decode(spec, &[len(3, b"alice"), len(5, &extra)].concat()),
        json!({"user": "alice", "extra": {"scopes": ["a", "b"]}})
    );
}

#[test]
fn repeated_numbers_packed_or_not() {
    let req = msg("k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement");
    let mut packed = Vec::new();
    for v in [1u64, 2, 300] {
        put_varint(&mut packed, v);
    }
    let want = json!({"operator": "In", "values": [1, 2, 300, 4]});
    assert_eq!(decode(req, &[len(2, b"In"), len(3, &packed), varint(3, 4)].concat()), want);
}

#[test]
fn unknown_fields_are_skipped_and_the_last_scalar_wins() {
    let cm = msg("k8s.io.api.core.v1.ConfigMapKeySelector");
    let mut fixed32 = Vec::new();
    put_key(&mut fixed32, 99, 5);
    fixed32.extend_from_slice(&[1, 2, 3, 4]);
    let bytes = [len(2, b"first"), varint(98, 5), fixed32, len(2, b"second"), len(77, b"zz")].concat();
    assert_eq!(decode(cm, &bytes), json!({"key": "second"}));
}

#[test]
fn a_singular_message_seen_twice_is_merged() {
    let pod = msg("k8s.io.api.core.v1.Pod");
    let first = len(1, &len(1, b"p"));
    let second = len(1, &len(3, b"ns"));
    assert_eq!(decode(pod, &[first, second].concat()), json!({"metadata": {"name": "p", "namespace": "ns"}}));
}

#[test]
fn omitempty_drops_only_plain_zero_values() {
    let spec = msg("k8s.io.api.apps.v1.DeploymentSpec");
    // replicas is *int32 (kept at 0); minReadySeconds is int32 with omitempty (dropped at 0).
    assert_eq!(decode(spec, &[varint(1, 0), varint(5, 0), varint(7, 0)].concat()), json!({"replicas": 0}));
    let port = msg("k8s.io.api.core.v1.ContainerPort");
    // containerPort has no omitempty: Go writes 0.
    assert_eq!(decode(port, &[varint(2, 0), varint(3, 0)].concat()), json!({"containerPort": 0}));
}

#[test]
fn crd_schema_unions() {
    let ext = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";
    let props = |t: &[u8]| len(5, t);
    let or_bool = msg(&format!("{ext}JSONSchemaPropsOrBool"));
    assert_eq!(decode(or_bool, &varint(1, 0)), json!(false));
    assert_eq!(decode(or_bool, &[varint(1, 1), len(2, &props(b"string"))].concat()), json!({"type": "string"}));
    let or_array = msg(&format!("{ext}JSONSchemaPropsOrArray"));
    assert_eq!(decode(or_array, &len(1, &props(b"string"))), json!({"type": "string"}));
    assert_eq!(
        decode(or_array, &[len(2, &props(b"a")), len(2, &props(b"b"))].concat()),
        json!([{"type": "a"}, {"type": "b"}])
    );
    let or_strings = msg(&format!("{ext}JSONSchemaPropsOrStringArray"));
    assert_eq!(decode(or_strings, &[len(2, b"x"), len(2, b"y")].concat()), json!(["x", "y"]));
    assert_eq!(decode(or_strings, &[]), Value::Null);
}

#[test]
fn wrong_wire_types_and_truncation_are_errors() {
    let cm = msg("k8s.io.api.core.v1.ConfigMapKeySelector");
    let err = decode_message(cm, &varint(2, 1), 0).err();
    assert!(matches!(err, Some(DecodeError::WireType { field: 2, expected: 2, found: 0, .. })), "{err:?}");
    let err = decode_message(cm, &len(2, b"abc")[..4], 0).err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("truncated in field 2 of message k8s.io.api.core.v1.ConfigMapKeySelector")
    );
}

#[test]
fn hostile_nesting_stops_at_the_depth_limit() {
    // JSONSchemaProps.not (field 28) holds another JSONSchemaProps: nest it far past the limit.
    let props = msg("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes = len(28, &bytes);
    }
    assert!(matches!(decode_message(props, &bytes, 0), Err(DecodeError::TooDeep { .. })));
}
