//! Hostile and broken bodies: each gives a clear error, and none panics in decoding or re-encoding (a small seeded fuzz).

mod common;

use k8s_pb::api::core::v1 as core;
use rkube_protobuf::{DecodeError, decode_envelope};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubectl-1.33").join(name);
    std::fs::read(path).expect("fixture")
}

#[test]
fn clear_errors() {
    let err = |body: &[u8]| decode_envelope(body).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err(b""), "not a Kubernetes protobuf body: missing the k8s\\0 magic prefix");
    assert_eq!(err(br#"{"kind":"Pod"}"#), "not a Kubernetes protobuf body: missing the k8s\\0 magic prefix");
    assert_eq!(err(b"k8s\0"), "the protobuf envelope has no apiVersion");
    let widget = common::envelope("example.com/v1", "Widget", &core::ConfigMap::default());
    assert_eq!(err(&widget), r#"unknown kind "Widget" in "example.com/v1""#);
    let mut truncated = fixture("create-deployment.pb");
    truncated.truncate(truncated.len() - 3);
    assert!(err(&truncated).starts_with("truncated in field"), "{}", err(&truncated));

    let mut gzip = common::envelope("v1", "ConfigMap", &core::ConfigMap::default());
    gzip.extend([0x1a, 4]);
    gzip.extend(b"gzip");
    assert!(matches!(decode_envelope(&gzip), Err(DecodeError::ContentEncoding(e)) if e == "gzip"));
}

#[test]
fn every_prefix_of_real_bodies_is_handled() {
    for name in ["create-deployment.pb", "create-cronjob.pb", "auth-can-i.pb", "create-ingress.pb"] {
        let body = fixture(name);
        for cut in 0..body.len() {
            let _ = decode_envelope(&body[..cut]);
        }
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_and_bit_flips_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "Secret"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ];
    for round in 0..20_000 {
        let len = rng.below(200);
        let raw: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Random bytes as the object of a real kind, so the decoder's walk (not just the envelope) is exercised.
        let (v, k) = kinds[round % kinds.len()];
        let body = common::envelope_raw(v, k, raw.clone());
        // Whatever decodes must also go back through the encoder without panicking.
        if let Ok(json) = decode_envelope(&body) {
            let _ = rkube_protobuf::encode_envelope(&json);
        }
        let mut plain = b"k8s\0".to_vec();
        plain.extend(&raw);
        let _ = decode_envelope(&plain);
    }
    for name in ["create-deployment.pb", "create-cronjob.pb", "create-service.pb"] {
        let body = fixture(name);
        for _ in 0..5_000 {
            let mut b = body.clone();
            for _ in 0..=rng.below(3) {
                let i = 4 + rng.below(b.len() - 4);
                b[i] ^= 1 << rng.below(8);
            }
            let _ = decode_envelope(&b);
        }
    }
}
