//! Cell formats several kinds share: label maps and selectors, container lists, booleans, "+ N more..." lists.

use serde_json::Value;

use crate::value::{arr_at, map_at, str_at};

/// A label map as `a=1,b=2` (keys sorted), or `<none>` (upstream's `labels.FormatLabels`).
pub(crate) fn labels(map: Option<&serde_json::Map<String, Value>>) -> String {
    let s = label_set(map);
    if s.is_empty() { "<none>".to_owned() } else { s }
}

/// A label map as `a=1,b=2`, keys sorted; empty for none.
fn label_set(map: Option<&serde_json::Map<String, Value>>) -> String {
    let Some(map) = map else { return String::new() };
    let mut pairs: Vec<(&String, &str)> = map.iter().map(|(k, v)| (k, v.as_str().unwrap_or(""))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A `LabelSelector` as the selector string upstream prints (`app=web,tier in (a,b)`), empty when it selects
/// everything or nothing.
pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else { return String::new() };
    // (key, rendered requirement): upstream sorts requirements by key only.
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = map_at(sel, "/matchLabels") {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in arr_at(sel, "/matchExpressions") {
        let key = str_at(e, "/key");
        let mut values: Vec<&str> = arr_at(e, "/values").iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let rendered = match str_at(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            // Upstream refuses to convert a selector with an unknown operator.
            _ => return "<error>".to_owned(),
        };
        reqs.push((key.to_owned(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(",")
}

/// A `LabelSelector` as upstream's `metav1.FormatLabelSelector`: the selector string, or `<none>`.
pub(crate) fn label_selector(sel: Option<&Value>) -> String {
    let s = selector_string(sel);
    if s.is_empty() { "<none>".to_owned() } else { s }
}

/// The names and images of a container list, comma-separated (upstream's `layoutContainerCells`).
pub(crate) fn containers(list: &[Value]) -> (String, String) {
    let names: Vec<&str> = list.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `True`/`False`, as upstream's `printBool`.
pub(crate) fn bool_word(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The first `max` items joined with `,`, then ` + N more...`; `<unset>` for none (upstream's
/// `listWithMoreString`).
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "<unset>".to_owned();
    }
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if items.len() > max { format!("{shown} + {} more...", items.len() - max) } else { shown }
}

/// Access modes as upstream abbreviates them (`RWO,ROX`), in upstream's fixed order, without duplicates.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    const ORDER: [(&str, &str); 4] =
        [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")];
    ORDER
        .iter()
        .filter(|(mode, _)| modes.iter().any(|m| m.as_str() == Some(mode)))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// `host:port`, with brackets around an IPv6 host (Go's `net.JoinHostPort`).
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// An IntOrString (`minAvailable: 2` or `"50%"`) as text.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selectors_and_labels() {
        let sel = json!({
            "matchLabels": {"tier": "web", "app": "x"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zz", "operator": "DoesNotExist"},
                {"key": "b", "operator": "Exists"}
            ]
        });
        assert_eq!(label_selector(Some(&sel)), "app=x,b,env in (dev,prod),tier=web,!zz");
        assert_eq!(label_selector(Some(&json!({}))), "<none>");
        assert_eq!(label_selector(None), "<none>");
        assert_eq!(labels(json!({"b": "2", "a": "1"}).as_object()), "a=1,b=2");
        assert_eq!(labels(None), "<none>");
    }

    #[test]
    fn lists() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..2], 3), "a,b");
        assert_eq!(list_with_more(&[], 3), "<unset>");
        assert_eq!(access_modes(&[json!("ReadWriteMany"), json!("ReadWriteOnce"), json!("ReadWriteOnce")]), "RWO,RWX");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
