//! JSON → protobuf: kubectl's real bodies re-encode byte for byte, and JSON survives a round trip.

use std::fs;
use std::path::Path;

use prost::Message as _;
use rkube_protobuf::{EncodeError, decode_envelope, encode_envelope};
use serde_json::json;

#[test]
fn kubectl_bodies_reencode_to_the_same_bytes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubectl-1.33");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("fixture dir").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "pb") {
            continue;
        }
        let body = fs::read(&path).expect("read");
        let json = decode_envelope(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = encode_envelope(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(again == body, "{}: re-encoded bytes differ\n got {again:02x?}\nwant {body:02x?}", path.display());
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn json_round_trips() {
    let objects = [
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z",
                         "labels": {"a": "b"}, "deletionGracePeriodSeconds": 0,
                         "managedFields": [{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:spec": {}}, "time": "2024-05-01T10:00:00Z"}]},
            "spec": {
                "containers": [{"name": "c", "image": "x",
                                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "initialDelaySeconds": 3},
                                "resources": {"limits": {"cpu": "100m"}},
                                "securityContext": {"runAsNonRoot": false, "runAsUser": -1}}],
                "volumes": [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}]}}],
                "automountServiceAccountToken": false
            },
            "status": {"phase": "Running", "startTime": null}
        }),
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "czNjcmV0"}, "type": "Opaque",
               "metadata": {"name": "s"}}),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
               "eventTime": "2024-05-01T10:00:00.123456Z", "reportingController": "x", "reportingInstance": "y",
               "action": "A", "reason": "R", "type": "Normal", "regarding": {"kind": "Pod", "name": "p"}}),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w"},
               "spec": {"group": "g", "scope": "Namespaced", "names": {"plural": "ws", "kind": "W"},
                        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                            "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                            "additionalProperties": {"type": "string"},
                            "properties": {"n": {"type": "number", "maximum": 2.5, "default": 1,
                                                 "enum": ["a", 1]}}}}}]}}),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background", "gracePeriodSeconds": 0}),
    ];
    for object in objects {
        let body = encode_envelope(&object).unwrap_or_else(|e| panic!("{e}: {object}"));
        let back = decode_envelope(&body).unwrap_or_else(|e| panic!("{e}: {object}"));
        // Decoding adds what Go's marshaller wrote for zero plain values: compare after one more trip.
        let again = decode_envelope(&encode_envelope(&back).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, again);
        // Everything given survives.
        assert_contains(&back, &object, "");
        prost_reads(&object, &body);
    }
}

/// k8s-pb's prost types, an independent reader, accept the bytes and see the same values.
fn prost_reads(object: &serde_json::Value, body: &[u8]) {
    use k8s_pb::apimachinery::pkg::runtime::Unknown;
    let unknown = Unknown::decode(&body[4..]).expect("envelope");
    let raw = unknown.raw.unwrap_or_default();
    match object["kind"].as_str() {
        Some("Pod") => {
            let pod = k8s_pb::api::core::v1::Pod::decode(raw.as_slice()).expect("Pod");
            let spec = pod.spec.unwrap_or_default();
            assert_eq!(spec.automount_service_account_token, Some(false));
            let c = &spec.containers[0];
            assert_eq!(c.security_context.as_ref().and_then(|s| s.run_as_user), Some(-1));
            let port = c.liveness_probe.as_ref().and_then(|p| p.handler.as_ref()?.http_get.as_ref()?.port.clone());
            assert_eq!(port.and_then(|p| p.str_val), Some("http".to_string()));
            let created = pod.metadata.and_then(|m| m.creation_timestamp).and_then(|t| t.seconds);
            assert_eq!(created, Some(1_714_557_600));
        }
        Some("CustomResourceDefinition") => {
            use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
            let crd = ext::CustomResourceDefinition::decode(raw.as_slice()).expect("CRD");
            let versions = crd.spec.unwrap_or_default().versions;
            let schema = versions[0].schema.clone().and_then(|s| s.open_apiv3_schema).unwrap_or_default();
            assert_eq!(schema.x_kubernetes_preserve_unknown_fields, Some(true));
            assert_eq!(schema.properties["n"].maximum, Some(2.5));
            assert_eq!(schema.properties["n"].default.as_ref().and_then(|d| d.raw.clone()), Some(b"1".to_vec()));
        }
        Some("Event") => {
            let event = k8s_pb::api::events::v1::Event::decode(raw.as_slice()).expect("Event");
            let t = event.event_time.unwrap_or_default();
            assert_eq!((t.seconds, t.nanos), (Some(1_714_557_600), Some(123_456_000)));
        }
        _ => {}
    }
}

/// Every value in `want` is in `got` (which may hold more: zero values Go writes without omitempty).
fn assert_contains(got: &serde_json::Value, want: &serde_json::Value, at: &str) {
    match (got, want) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => {
            for (k, v) in w {
                let path = format!("{at}.{k}");
                match g.get(k) {
                    Some(gv) => assert_contains(gv, v, &path),
                    None => assert!(v.is_null(), "{path} lost"),
                }
            }
        }
        (serde_json::Value::Array(g), serde_json::Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_contains(g, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

#[test]
fn encoding_errors_name_the_problem() {
    let err = |v: serde_json::Value| encode_envelope(&v).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err(json!({"kind": "Pod"})), "the object has no apiVersion");
    assert_eq!(err(json!({"apiVersion": "x/v1", "kind": "Pod"})), r#"unknown kind "Pod" in "x/v1""#);
    assert_eq!(
        err(json!({"apiVersion": "v1", "kind": "Pod", "bogus": 1})),
        r#"k8s.io.api.core.v1.Pod has no field "bogus""#
    );
    assert_eq!(
        err(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5}})),
        r#"field "name" of k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta must be a string"#
    );
    assert!(matches!(
        encode_envelope(&json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "%%"}})),
        Err(EncodeError::BadValue { .. })
    ));
}
