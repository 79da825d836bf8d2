//! Decodes real protobuf bodies, built with k8s-pb's prost types, and compares with the JSON upstream writes.
//!
//! The expected JSON is written out by hand from Go's rules: plain values with `omitempty` vanish
//! when zero, pointers stay when set, structs are always written, `creationTimestamp` of a new
//! object is `null`. The prost messages set the zero values Go's marshaller writes (`Some("")`,
//! `Some(0)`), as kubectl's bodies carry them.

mod common;

use std::collections::BTreeMap;

use common::{envelope, map};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use rkube_protobuf::decode_envelope;
use serde_json::json;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// ObjectMeta as Go's marshaller writes a new object's: every plain field present, zero or not.
fn new_meta(name: &str, namespace: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    })
}

fn decode(api_version: &str, kind: &str, msg: &impl prost::Message) -> serde_json::Value {
    match decode_envelope(&envelope(api_version, kind, msg)) {
        Ok(v) => v,
        Err(e) => panic!("decoding {kind}: {e}"),
    }
}

#[test]
fn namespace_with_labels() {
    let mut meta = new_meta("demo", "");
    if let Some(m) = meta.as_mut() {
        m.labels = map([("team", "a"), ("tier", "b")]);
    }
    let ns = core::Namespace {
        metadata: meta,
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus { phase: s(""), ..Default::default() }),
    };
    assert_eq!(
        decode("v1", "Namespace", &ns),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "demo", "labels": {"team": "a", "tier": "b"}, "creationTimestamp": null},
            "spec": {},
            "status": {}
        })
    );
}

#[test]
fn configmap_with_data_and_binary_data() {
    let cm = core::ConfigMap {
        metadata: new_meta("cfg", "default"),
        data: map([("a.conf", "x=1\n"), ("empty", "")]),
        binary_data: BTreeMap::from([("blob".to_string(), vec![0u8, 1, 2, 255])]),
        immutable: None,
    };
    assert_eq!(
        decode("v1", "ConfigMap", &cm),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": null},
            "data": {"a.conf": "x=1\n", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="}
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let secret = core::Secret {
        metadata: new_meta("creds", "default"),
        immutable: None,
        data: BTreeMap::from([("password".to_string(), b"s3cret".to_vec()), ("none".to_string(), Vec::new())]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    assert_eq!(
        decode("v1", "Secret", &secret),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default", "creationTimestamp": null},
            "data": {"password": "czNjcmV0", "none": ""},
            "type": "Opaque"
        })
    );
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

#[test]
fn deployment_as_kubectl_create_deployment_sends_it() {
    let labels = map([("app", "web")]);
    let container = core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s(""),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        env: vec![core::EnvVar { name: s("MODE"), value: s("prod"), value_from: None }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([("cpu".to_string(), quantity("100m")), ("memory".to_string(), quantity("64Mi"))]),
            requests: BTreeMap::new(),
            claims: vec![],
        }),
        working_dir: s(""),
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: new_meta("web", "default"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector { match_labels: labels.clone(), match_expressions: vec![] }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels,
                    creation_timestamp: Some(meta::Time::default()),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    restart_policy: s(""),
                    dns_policy: s(""),
                    service_account_name: s(""),
                    host_network: Some(false),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString { r#type: Some(0), int_val: Some(1), str_val: s("") }),
                    max_surge: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("25%") }),
                }),
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("apps/v1", "Deployment", &deployment),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}
                        }],
                        "automountServiceAccountToken": false
                    }
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}
                }
            },
            "status": {}
        })
    );
}

#[test]
fn pod_times_probes_and_inline_sources() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            namespace: s("default"),
            // Time in JSON has whole seconds: upstream drops the nanoseconds when reading protobuf.
            creation_timestamp: Some(meta::Time { seconds: Some(1_714_557_600), nanos: Some(123) }),
            deletion_grace_period_seconds: Some(0),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                liveness_probe: Some(core::Probe {
                    handler: Some(core::ProbeHandler {
                        http_get: Some(core::HttpGetAction {
                            path: s("/healthz"),
                            port: Some(IntOrString { r#type: Some(0), int_val: Some(8080), str_val: s("") }),
                            host: s(""),
                            scheme: s("HTTP"),
                            http_headers: vec![],
                        }),
                        ..Default::default()
                    }),
                    initial_delay_seconds: Some(3),
                    timeout_seconds: Some(0),
                    termination_grace_period_seconds: None,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: vec![core::Volume {
                name: s("cfg"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference { name: s("settings") }),
                        default_mode: Some(420),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            pod_ip: s("10.42.0.7"),
            start_time: Some(meta::Time { seconds: Some(1_714_557_601), nanos: None }),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("v1", "Pod", &pod),
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "namespace": "default",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "deletionGracePeriodSeconds": 0
            },
            "spec": {
                "containers": [{
                    "name": "c",
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "initialDelaySeconds": 3
                    }
                }],
                "volumes": [{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420}}]
            },
            "status": {"phase": "Running", "podIP": "10.42.0.7", "startTime": "2024-05-01T10:00:01Z"}
        })
    );
}

#[test]
fn self_subject_access_review_from_auth_can_i() {
    let review = authz::SelfSubjectAccessReview {
        metadata: Some(meta::ObjectMeta { creation_timestamp: Some(meta::Time::default()), ..Default::default() }),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s("apps"),
                version: s(""),
                resource: s("deployments"),
                subresource: s(""),
                name: s(""),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(false),
            reason: s(""),
            evaluation_error: s(""),
        }),
    };
    assert_eq!(
        decode("authorization.k8s.io/v1", "SelfSubjectAccessReview", &review),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "group": "apps", "resource": "deployments"}},
            // `allowed` has no omitempty in Go: it is written even when false.
            "status": {"allowed": false}
        })
    );
}

#[test]
fn token_request_from_create_token() {
    let request = authn::TokenRequest {
        metadata: new_meta("default", "default"),
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["https://kubernetes.default.svc".to_string()],
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        }),
        status: Some(authn::TokenRequestStatus { token: s(""), expiration_timestamp: Some(meta::Time::default()) }),
    };
    assert_eq!(
        decode("authentication.k8s.io/v1", "TokenRequest", &request),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": "default", "namespace": "default", "creationTimestamp": null},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            // Both are plain fields without omitempty.
            "status": {"token": "", "expirationTimestamp": null}
        })
    );
}

#[test]
fn eviction_with_delete_options() {
    let eviction = policy::Eviction {
        metadata: new_meta("web-1", "default"),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions { uid: s("1234"), resource_version: None }),
            dry_run: vec!["All".to_string()],
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("policy/v1", "Eviction", &eviction),
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": null},
            "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "1234"}, "dryRun": ["All"]}
        })
    );
}

#[test]
fn delete_options_under_any_group_version() {
    let options =
        meta::DeleteOptions { propagation_policy: s("Foreground"), orphan_dependents: None, ..Default::default() };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        assert_eq!(
            decode(api_version, "DeleteOptions", &options),
            json!({"apiVersion": api_version, "kind": "DeleteOptions", "propagationPolicy": "Foreground"})
        );
    }
}

#[test]
fn scale_and_crd_schema() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let scale = k8s_pb::api::autoscaling::v1::Scale {
        metadata: new_meta("web", "default"),
        spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(3) }),
        status: None,
    };
    assert_eq!(
        decode("autoscaling/v1", "Scale", &scale),
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {"replicas": 3}
        })
    );

    let string_schema = ext::JsonSchemaProps { r#type: s("string"), ..Default::default() };
    let schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: BTreeMap::from([(
            "size".to_string(),
            ext::JsonSchemaProps { r#type: s("integer"), maximum: Some(10.5), ..Default::default() },
        )]),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(true), schema: None })),
        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(string_schema)),
            j_son_schemas: vec![],
        })),
        default: Some(ext::Json { raw: Some(br#"{"size":1}"#.to_vec()) }),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: new_meta("widgets.example.com", ""),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(schema) }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd)["spec"],
        json!({
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "maximum": 10.5}},
                    "additionalProperties": true,
                    "items": {"type": "string"},
                    "default": {"size": 1},
                    "x-kubernetes-preserve-unknown-fields": true
                }}
            }]
        })
    );
}
