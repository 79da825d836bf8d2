//! Label maps and `LabelSelector`s: upstream's validation (`ValidateLabels`, `ValidateLabelSelector`) and
//! matching (`LabelSelectorAsSelector(...).Matches(...)`), used by workloads, services and affinity.

use std::collections::BTreeMap;

use rkube_apimachinery::Cause;
use serde_json::Value;

use crate::errs::{child, forbidden, idx, invalid_str, required};
use crate::names::{label_value, qualified_name};
use crate::value::{arr, s, str_list, str_map};

/// `ValidateLabelName`: a label key, errors reported at `f` with the key as value.
pub(crate) fn validate_label_name(name: &str, f: &str) -> Vec<Cause> {
    qualified_name(name).iter().map(|m| invalid_str(f, name, m)).collect()
}

/// `ValidateLabels`: every key and value of a map, errors reported at the map's own path (sorted by key).
pub(crate) fn validate_labels(map: Option<&Value>, f: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (k, v) in str_map(map) {
        errs.extend(validate_label_name(&k, f));
        errs.extend(label_value(&v).iter().map(|m| invalid_str(f, &v, m)));
    }
    errs
}

/// `ValidateLabelSelector`; `None` is valid (nothing to check).
pub(crate) fn validate_selector(sel: Option<&Value>, f: &str, allow_invalid_values: bool) -> Vec<Cause> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else { return Vec::new() };
    let mut errs = validate_labels(sel.get("matchLabels"), &child(f, "matchLabels"));
    for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = idx(&child(f, "matchExpressions"), i);
        let values = str_list(e, "values");
        match s(e, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(&child(&p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(invalid_str(&child(&p, "operator"), op, "not a valid selector operator")),
        }
        errs.extend(validate_label_name(s(e, "key"), &child(&p, "key")));
        if !allow_invalid_values {
            for (j, v) in values.iter().enumerate() {
                errs.extend(label_value(v).iter().map(|m| invalid_str(&idx(&child(&p, "values"), j), v, m)));
            }
        }
    }
    errs
}

/// A label selector ready to match.
#[derive(Debug, Clone)]
pub(crate) enum Selector {
    /// A nil selector: matches nothing.
    Nothing,
    /// Requirements that must all hold (none: matches everything).
    All(Vec<Requirement>),
}

/// One requirement of a selector.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// `LabelSelectorAsSelector`: `Err` when the selector could not be built (invalid operator, key or values).
    pub(crate) fn from_label_selector(sel: Option<&Value>) -> Result<Selector, ()> {
        let Some(sel) = sel.filter(|v| !v.is_null()) else { return Ok(Selector::Nothing) };
        let mut reqs = Vec::new();
        for (k, v) in str_map(sel.get("matchLabels")) {
            if !qualified_name(&k).is_empty() || !label_value(&v).is_empty() {
                return Err(());
            }
            reqs.push(Requirement { key: k, op: Op::In, values: vec![v] });
        }
        for e in arr(sel, "matchExpressions") {
            let values: Vec<String> = str_list(e, "values").into_iter().map(str::to_owned).collect();
            let op = match s(e, "operator") {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => return Err(()),
            };
            let key = s(e, "key");
            let values_ok = match op {
                Op::In | Op::NotIn => !values.is_empty(),
                Op::Exists | Op::DoesNotExist => values.is_empty(),
            };
            if !values_ok || !qualified_name(key).is_empty() || values.iter().any(|v| !label_value(v).is_empty()) {
                return Err(());
            }
            reqs.push(Requirement { key: key.to_owned(), op, values });
        }
        Ok(Selector::All(reqs))
    }

    /// `labels.Set(m).AsSelector()` for map selectors (ReplicationController, Service).
    pub(crate) fn from_map(m: &BTreeMap<String, String>) -> Selector {
        Selector::All(
            m.iter().map(|(k, v)| Requirement { key: k.clone(), op: Op::In, values: vec![v.clone()] }).collect(),
        )
    }

    /// Whether the selector has no requirements (matches everything).
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::All(r) if r.is_empty())
    }

    /// Whether `labels` satisfy the selector.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All(reqs) => reqs.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.op {
                    Op::In => v.is_some_and(|v| r.values.contains(v)),
                    Op::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                    Op::Exists => v.is_some(),
                    Op::DoesNotExist => v.is_none(),
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_validation_and_matching() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert!(validate_selector(Some(&sel), "spec.selector", false).is_empty());
        let s = Selector::from_label_selector(Some(&sel)).expect("valid");
        let labels: BTreeMap<String, String> =
            [("app", "web"), ("tier", "b")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(s.matches(&labels));
        let bad = json!({"matchExpressions": [{"key": "x", "operator": "Foo"}]});
        let errs = validate_selector(Some(&bad), "spec.selector", false);
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].operator");
        assert_eq!(errs[0].message, "Invalid value: \"Foo\": not a valid selector operator");
        assert!(Selector::from_label_selector(Some(&bad)).is_err());
        assert!(!Selector::from_label_selector(None).is_ok_and(|s| s.matches(&labels)));
        let errs = validate_labels(Some(&json!({"a b": "ok"})), "metadata.labels");
        assert_eq!(errs[0].field, "metadata.labels");
    }
}
