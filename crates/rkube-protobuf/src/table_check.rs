//! Checks the checked-in table against k8s-pb's source: same messages, field numbers and wire types.
//!
//! JSON names come from Go sources that CI does not have, so they are not regenerated here; but
//! any k8s-pb bump that adds, drops or retypes a field fails this test until `examples/gen_table`
//! is rerun.

#[path = "../examples/gen_table/pb_source.rs"]
#[allow(dead_code)]
mod pb_source;

use std::collections::BTreeMap;

use pb_source::PbType;

use crate::table::{self, Card, K8S_PB_VERSION, Ty};

/// What the proto full name of a k8s-pb message is, up to case (k8s-pb changes acronym case).
fn full_name_lower(module: &str, name: &str) -> String {
    format!("k8s.io.{}.{name}", module.replace('/', ".")).to_ascii_lowercase()
}

#[test]
fn table_matches_k8s_pb_source() {
    assert_eq!(K8S_PB_VERSION, pb_source::K8S_PB_VERSION, "regenerate the table for the new k8s-pb");
    let src = pb_source::find_k8s_pb_src().unwrap_or_else(|e| panic!("{e}"));
    let pb = pb_source::read_k8s_pb(&src).unwrap_or_else(|e| panic!("{e}"));
    let by_lower: BTreeMap<String, u16> =
        table::messages().iter().enumerate().map(|(i, m)| (m.name.to_ascii_lowercase(), i as u16)).collect();
    assert_eq!(by_lower.len(), table::messages().len(), "two table messages differ only in case");
    let resolve = |m: &str, n: &str| by_lower.get(&full_name_lower(m, n)).copied();

    let mut problems = Vec::new();
    for msg in pb.values() {
        let Some(index) = resolve(&msg.module, &msg.rust_name) else {
            problems.push(format!("{}::{} is not in the table", msg.module, msg.rust_name));
            continue;
        };
        let def = table::message(index);
        let mut fields = msg.fields.clone();
        fields.sort_by_key(|f| f.tag);
        let want: Vec<_> = fields
            .iter()
            .map(|f| {
                let ty = match &f.ty {
                    PbType::Scalar(s) => scalar(s),
                    PbType::Message(m, n) => resolve(m, n).map(Ty::Msg),
                    PbType::MapScalar(s) if s == "string" => Some(Ty::MapStr),
                    PbType::MapScalar(_) => Some(Ty::MapBytes),
                    PbType::MapMessage(m, n) => resolve(m, n).map(Ty::MapMsg),
                };
                (f.tag, ty, if f.repeated { Card::Rep } else { Card::One })
            })
            .collect();
        let have: Vec<_> = def.fields.iter().map(|f| (f.tag, Some(f.ty), f.card)).collect();
        if want != have {
            problems.push(format!("{}: k8s-pb has {want:?}, the table {have:?}", def.name));
        }
    }
    if pb.len() != table::messages().len() {
        problems.push(format!("k8s-pb has {} messages, the table {}", pb.len(), table::messages().len()));
    }
    assert!(problems.is_empty(), "the table is stale; rerun examples/gen_table:\n{}", problems.join("\n"));
}

fn scalar(s: &str) -> Option<Ty> {
    Some(match s {
        "string" => Ty::Str,
        "bytes" => Ty::Bytes,
        "bool" => Ty::Bool,
        "int32" => Ty::I32,
        "int64" => Ty::I64,
        "double" => Ty::F64,
        _ => return None,
    })
}

#[test]
fn every_kind_is_a_plain_message_and_findable() {
    for (i, def) in table::messages().iter().enumerate() {
        let i = i as u16;
        assert_eq!(table::message_by_name(def.name), Some(i), "{}", def.name);
        if let Some((api_version, kind)) = table::kind_of(i) {
            assert_eq!(table::message_for_kind(api_version, kind), Some(i), "{api_version} {kind}");
            assert_eq!(def.special, table::Special::None, "{}", def.name);
        }
        for w in def.fields.windows(2) {
            assert!(w[0].tag < w[1].tag, "{} fields out of order", def.name);
        }
    }
    for (v, k) in [
        ("v1", "Namespace"),
        ("apps/v1", "Deployment"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("policy/v1", "Eviction"),
        ("autoscaling/v1", "Scale"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("storage.k8s.io/v1", "CSIDriver"),
        ("metrics.k8s.io/v1beta1", "PodMetrics"),
        ("meta.k8s.io/v1", "DeleteOptions"),
        ("batch/v1", "DeleteOptions"),
    ] {
        assert!(table::message_for_kind(v, k).is_some(), "{v} {k}");
    }
    assert_eq!(table::message_for_kind("v1", "Deployment"), None);
}
