//! Cases from structured-merge-diff's own merge tests (merge/multiple_appliers_test.go, leaf_test.go),
//! replayed through this crate with the same schema, to check pruning and ownership against upstream.

use serde_json::{Value, json};

use super::*;
use crate::{ApplyError, ListType, PathElement, Schema, apply, update};

/// Upstream's test schema: `list` and `listOfLists` keyed by `name`, `listOfLists[].value` a set.
struct Nested;

impl Schema for Nested {
    fn list_type(&self, path: &[PathElement]) -> ListType {
        match path {
            [PathElement::Field(f)] if f == "list" || f == "listOfLists" => ListType::Map(vec!["name".into()]),
            [PathElement::Field(f), PathElement::Key(_), PathElement::Field(v)]
                if f == "listOfLists" && v == "value" =>
            {
                ListType::Set
            }
            _ => ListType::Atomic,
        }
    }
}

enum Op {
    Apply(&'static str, Value),
    ForceApply(&'static str, Value),
    Update(&'static str, Value),
    /// An apply expected to fail with this message.
    Conflicting(&'static str, Value, &'static str),
}

fn with_type(mut v: Value) -> Value {
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("T");
    v
}

/// Runs the operations from an empty object; returns the object (without type and metadata) and its managers.
fn run(ops: Vec<Op>) -> (Value, Vec<(String, String)>) {
    let mut live: Option<Value> = None;
    for op in ops {
        let r = |m: &'static str| Request::new(m, "v1", "T", T0);
        let next = match op {
            Op::Apply(m, obj) => apply(live.as_ref(), &with_type(obj), false, &r(m), &Nested).expect("applies"),
            Op::ForceApply(m, obj) => apply(live.as_ref(), &with_type(obj), true, &r(m), &Nested).expect("applies"),
            Op::Update(m, obj) => {
                let mut obj = with_type(obj);
                obj["metadata"] = live.as_ref().map(|l| l["metadata"].clone()).unwrap_or(json!({}));
                update(live.as_ref(), &obj, &r(m), &Nested)
            }
            Op::Conflicting(m, obj, message) => {
                let err = apply(live.as_ref(), &with_type(obj), false, &r(m), &Nested).expect_err("conflicts");
                assert!(matches!(err, ApplyError::Conflict(_)));
                assert_eq!(err.to_string(), message);
                continue;
            }
        };
        let mut next = next;
        next["metadata"]["uid"] = json!("u");
        live = Some(next);
    }
    let live = live.unwrap_or_default();
    // Sorted by name: entry order depends on times, which these cases do not check.
    let mut owners: Vec<(String, String)> = crate::managed_fields(&live)
        .expect("decodes")
        .into_iter()
        .map(|e| {
            let f = e.fields().to_fields_v1_string();
            (e.manager, f)
        })
        .collect();
    owners.sort();
    let mut obj = live;
    if let Some(m) = obj.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            m.remove(k);
        }
    }
    (obj, owners)
}

fn owners(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(m, f)| ((*m).to_owned(), (*f).to_owned())).collect()
}

const A: &str = r#"{"f:listOfLists":{"k:{\"name\":\"a\"}":{".":{},"f:name":{}}}}"#;

#[test]
fn remove_one_keep_one() {
    let (obj, managers) = run(vec![
        Op::Apply("apply-one", json!({"list": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})),
        Op::Apply("apply-two", json!({"list": [{"name": "c"}, {"name": "d"}]})),
        Op::Apply("apply-one", json!({"list": [{"name": "a"}]})),
    ]);
    assert_eq!(obj, json!({"list": [{"name": "a"}, {"name": "c"}, {"name": "d"}]}));
    assert_eq!(
        managers,
        owners(&[
            ("apply-one", r#"{"f:list":{"k:{\"name\":\"a\"}":{".":{},"f:name":{}}}}"#),
            (
                "apply-two",
                r#"{"f:list":{"k:{\"name\":\"c\"}":{".":{},"f:name":{}},"k:{\"name\":\"d\"}":{".":{},"f:name":{}}}}"#
            ),
        ])
    );
}

#[test]
fn same_value_no_conflict_and_change_value_conflicts() {
    let (_, managers) = run(vec![
        Op::Apply("apply-one", json!({"list": [{"name": "a", "value": 0}]})),
        Op::Apply("apply-two", json!({"list": [{"name": "a", "value": 0}]})),
    ]);
    let both = r#"{"f:list":{"k:{\"name\":\"a\"}":{".":{},"f:name":{},"f:value":{}}}}"#;
    assert_eq!(managers, owners(&[("apply-one", both), ("apply-two", both)]));
    run(vec![
        Op::Apply("apply-one", json!({"list": [{"name": "a", "value": 0}]})),
        Op::Conflicting(
            "apply-two",
            json!({"list": [{"name": "a", "value": 1}]}),
            r#"Apply failed with 1 conflict: conflict with "apply-one": .list[name="a"].value"#,
        ),
    ]);
}

#[test]
fn remove_one_keep_one_with_two_sub_items() {
    let (obj, managers) = run(vec![
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]})),
        Op::Apply("apply-two", json!({"listOfLists": [{"name": "b", "value": ["d"]}]})),
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}]})),
    ]);
    assert_eq!(obj, json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["d"]}]}));
    assert_eq!(
        managers,
        owners(&[
            ("apply-one", A),
            ("apply-two", r#"{"f:listOfLists":{"k:{\"name\":\"b\"}":{".":{},"f:name":{},"f:value":{"v:\"d\"":{}}}}}"#)
        ])
    );
}

#[test]
fn remove_one_keep_one_with_dangling_subitem() {
    let (obj, managers) = run(vec![
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]})),
        Op::Apply("apply-two", json!({"listOfLists": [{"name": "b", "value": ["d"]}]})),
        Op::Update("controller", json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c", "d", "e"]}]})),
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}]})),
    ]);
    assert_eq!(obj, json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["d", "e"]}]}));
    assert_eq!(
        managers,
        owners(&[
            ("apply-one", A),
            ("apply-two", r#"{"f:listOfLists":{"k:{\"name\":\"b\"}":{".":{},"f:name":{},"f:value":{"v:\"d\"":{}}}}}"#),
            ("controller", r#"{"f:listOfLists":{"k:{\"name\":\"b\"}":{"f:value":{"v:\"e\"":{}}}}}"#),
        ])
    );
}

#[test]
fn remove_one_with_dangling_subitem_keep_one() {
    // The controller owned only a value inside the dropped item: the whole item goes, and with it the
    // controller's ownership, as upstream does.
    let (obj, managers) = run(vec![
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]})),
        Op::Apply("apply-two", json!({"listOfLists": [{"name": "a", "value": ["b"]}]})),
        Op::Update(
            "controller",
            json!({"listOfLists": [{"name": "a", "value": ["b"]}, {"name": "b", "value": ["c", "d"]}]}),
        ),
        Op::Apply("apply-one", json!({"listOfLists": [{"name": "a"}]})),
    ]);
    assert_eq!(obj, json!({"listOfLists": [{"name": "a", "value": ["b"]}]}));
    assert_eq!(
        managers,
        owners(&[
            ("apply-one", A),
            ("apply-two", r#"{"f:listOfLists":{"k:{\"name\":\"a\"}":{".":{},"f:name":{},"f:value":{"v:\"b\"":{}}}}}"#)
        ])
    );
}

#[test]
fn leaf_apply_update_apply_with_conflict_then_force() {
    let (obj, managers) = run(vec![
        Op::Apply("default", json!({"numeric": 1, "string": "string"})),
        Op::Update("controller", json!({"numeric": 1, "string": "controller string", "bool": true})),
        Op::Conflicting(
            "default",
            json!({"numeric": 2, "string": "user string"}),
            r#"Apply failed with 1 conflict: conflict with "controller" using v1: .string"#,
        ),
        Op::ForceApply("default", json!({"numeric": 2, "string": "user string"})),
    ]);
    assert_eq!(obj, json!({"numeric": 2, "string": "user string", "bool": true}));
    assert_eq!(
        managers,
        owners(&[("controller", r#"{"f:bool":{}}"#), ("default", r#"{"f:numeric":{},"f:string":{}}"#)])
    );
}
