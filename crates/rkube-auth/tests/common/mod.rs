//! Shared fixtures for the integration tests: keys, objects, a fixed clock, JWT decoding.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// 2018-01-01T00:00:00Z, upstream's claims test epoch.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_514_764_800)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One RSA 2048 key per test binary: generation is the slow part.
pub fn rsa_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("rsa key")
            .serialize_pem()
    })
}

/// A second RSA key, for "signed by another key".
pub fn other_rsa_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("rsa key")
            .serialize_pem()
    })
}

pub fn audiences() -> Vec<String> {
    vec![ISSUER.to_owned()]
}

pub fn issuer() -> rkube_auth::TokenIssuer {
    rkube_auth::TokenIssuer::new(rsa_pem(), ISSUER, audiences()).expect("issuer")
}

pub fn service_account() -> Value {
    json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": { "name": "builder", "namespace": "ci", "uid": "sa-uid-1" },
    })
}

pub fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "runner", "namespace": "ci", "uid": "pod-uid-1" },
        "spec": { "serviceAccountName": "builder", "nodeName": "node-a" },
    })
}

pub fn node() -> Value {
    json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "node-a", "uid": "node-uid-1" } })
}

pub fn pod_spec() -> Value {
    json!({ "boundObjectRef": { "apiVersion": "v1", "kind": "Pod", "name": "runner", "uid": "pod-uid-1" } })
}

/// The decoded header and payload of a compact JWS, as raw JSON text and as values.
pub fn decode(token: &str) -> (String, String) {
    let mut parts = token.split('.');
    let mut part = || {
        let p = parts.next().expect("part");
        String::from_utf8(URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("utf-8")
    };
    (part(), part())
}

pub fn payload(token: &str) -> Value {
    serde_json::from_str(&decode(token).1).expect("json payload")
}

/// A getter over a fixed set of objects, as the API server's cache would answer.
pub fn getter(objects: Vec<Value>) -> impl Fn(&rkube_auth::Lookup) -> Option<Value> {
    move |l| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == l.kind.kind()
                    && o["metadata"]["name"] == l.name.as_str()
                    && o["metadata"].get("namespace").and_then(Value::as_str).unwrap_or_default() == l.namespace
            })
            .cloned()
    }
}
