//! `metav1.LabelSelector` objects (matchLabels + matchExpressions) as selectors.

use rkube_apimachinery::labels::{Requirement, Selector};
use serde_json::Value;

/// The selector a LabelSelector object describes; `None` for a missing or malformed one
/// (upstream: a nil selector selects nothing, an empty one everything).
pub(crate) fn from_label_selector(sel: Option<&Value>) -> Option<Selector> {
    let sel = sel?.as_object()?;
    let mut out = Selector::default();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            out.push(Requirement::In(k.clone(), vec![v.as_str()?.to_owned()]));
        }
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key")?.as_str()?.to_owned();
        let values: Vec<String> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        out.push(match e.get("operator")?.as_str()? {
            "In" => Requirement::In(key, values),
            "NotIn" => Requirement::NotIn(key, values),
            "Exists" => Requirement::Exists(key),
            "DoesNotExist" => Requirement::DoesNotExist(key),
            _ => return None,
        });
    }
    Some(out)
}
