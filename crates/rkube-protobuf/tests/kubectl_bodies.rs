//! Decodes request bodies that kubectl 1.33 really sent (captured from `kubectl create ...` against a
//! stub server) and compares each with the JSON beside it, which is kubectl's own
//! `--dry-run=client -o json` for the same command: the same Go object through upstream's JSON encoder.
//!
//! `RKUBE_PROTOBUF_BLESS=1 cargo test -p rkube-protobuf --test kubectl_bodies` rewrites the JSON files
//! from the decoder; review the diff before keeping it.

use std::fs;
use std::path::Path;

#[test]
fn kubectl_bodies_decode_to_kubectl_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubectl-1.33");
    let bless = std::env::var_os("RKUBE_PROTOBUF_BLESS").is_some();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "fixtures missing from {}", dir.display());
    for pb in names {
        let body = fs::read(&pb).expect("read fixture");
        let got = rkube_protobuf::decode_envelope(&body).unwrap_or_else(|e| panic!("{}: {e}", pb.display()));
        let json_path = pb.with_extension("json");
        if bless {
            let text = serde_json::to_string_pretty(&got).expect("serialise") + "\n";
            fs::write(&json_path, text).expect("write fixture");
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_slice(&fs::read(&json_path).expect("read expected JSON")).expect("expected JSON parses");
        assert_eq!(got, want, "{}", pb.display());
    }
}
