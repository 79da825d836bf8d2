//! Strategic merge patch (upstream's `k8s.io/apimachinery/pkg/util/strategicpatch`): like a merge patch,
//! but lists of objects with a merge key (containers by `name`, ports by `containerPort`, ...) merge
//! element by element, and `$patch`, `$setElementOrder`, `$retainKeys` and `$deleteFromPrimitiveList` directives apply.
//! Hand-written: no crate implements Kubernetes' strategic merge.

use rkube_apimachinery::ApiError;
use serde_json::{Map, Value};

/// The merge key of a list field, by the field's path of names from the object root (indices dropped), and
/// whether the list is a set of primitives merged by value. From the `patchMergeKey`/`patchStrategy` tags of
/// the built-in types.
fn merge_key(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let key = match last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "hostAliases"
        | "readinessGates"
        | "resourceClaims"
        | "conditions"
        | "ownerReferences" => match last {
            "hostAliases" => "ip",
            "readinessGates" => "conditionType",
            "conditions" => "type",
            "ownerReferences" => "uid",
            _ => "name",
        },
        "ports" if path.contains("containers") || path.contains("Containers") => "containerPort",
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "topologySpreadConstraints" => "topologyKey",
        "tolerations" => return None,
        "finalizers" => return Some(""),
        _ => return None,
    };
    Some(key)
}

/// Applies `patch` to `current`; `kind_path` prefixes field paths (unused keys are matched by field name).
pub(super) fn apply(_kind_path: &str, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let Some(p) = patch.as_object() else {
        return Err(ApiError::bad_request("a strategic merge patch must be a JSON object"));
    };
    Ok(merge_value(current, p, ""))
}

fn merge_value(current: &Value, patch: &Map<String, Value>, path: &str) -> Value {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        return strip_directives(&Value::Object(p));
    }
    let mut out = current.as_object().cloned().unwrap_or_default();
    let retain: Option<Vec<String>> = patch
        .get("$retainKeys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect());
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (out.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        // `$setElementOrder/<field>` only orders a list kubectl also sends whole; other directives
        // (`$patch`, `$retainKeys`) were handled above.
        if k.starts_with('$') {
            continue;
        }
        let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    out.remove(k);
                    continue;
                }
                let cur = out.get(k).cloned().unwrap_or(Value::Object(Map::new()));
                let merged = if cur.is_object() { merge_value(&cur, po, &child) } else { strip_directives(v) };
                out.insert(k.clone(), merged);
            }
            Value::Array(items) => {
                let cur = out.get(k).and_then(Value::as_array).cloned();
                let order = patch.get(&format!("$setElementOrder/{k}")).and_then(Value::as_array);
                let merged = match (merge_key(&child), cur) {
                    (Some(key), Some(cur)) => merge_list(&cur, items, key, order, &child),
                    _ => Value::Array(items.iter().filter(|i| !is_directive_item(i)).map(strip_directives).collect()),
                };
                out.insert(k.clone(), merged);
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(keep) = retain {
        out.retain(|k, _| keep.contains(k));
    }
    Value::Object(out)
}

fn is_directive_item(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.contains_key("$patch"))
}

/// Merges a list by merge key (`""` means a set of primitives merged by value).
fn merge_list(cur: &[Value], patch: &[Value], key: &str, order: Option<&Vec<Value>>, path: &str) -> Value {
    if key.is_empty() {
        let mut out = cur.to_vec();
        for p in patch {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        return Value::Array(out);
    }
    if patch.iter().any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Value::Array(patch.iter().filter(|p| !is_directive_item(p)).map(strip_directives).collect());
    }
    let mut out: Vec<Value> = cur.to_vec();
    for p in patch {
        let Some(id) = p.get(key) else {
            out.push(strip_directives(p));
            continue;
        };
        let pos = out.iter().position(|c| c.get(key) == Some(id));
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, p.as_object()) {
            (Some(i), _) if delete => {
                out.remove(i);
            }
            (None, _) if delete => {}
            (Some(i), Some(po)) => out[i] = merge_value(&out[i], po, path),
            (None, _) => out.push(strip_directives(p)),
            (Some(i), None) => out[i] = p.clone(),
        }
    }
    if let Some(order) = order {
        // $setElementOrder lists the patched list's order by merge key; elements it does not name keep their place after.
        let rank = |v: &Value| order.iter().position(|o| o.get(key) == v.get(key)).unwrap_or(usize::MAX);
        out.sort_by_key(rank);
    }
    Value::Array(out)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let cur =
            json!({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"}]}}}});
        let patch = json!({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"z"}]}}}});
        let out = apply("", &cur, &patch).expect("patch");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name":"a","image":"x"},{"name":"b","image":"z"}])
        );
    }

    #[test]
    fn directives() {
        let cur = json!({"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}});
        let patch = json!({"metadata":{"labels":{"a":null}},"spec":{"containers":[{"name":"a","$patch":"delete"}]}});
        let out = apply("", &cur, &patch).expect("patch");
        assert_eq!(out, json!({"metadata":{"labels":{"b":"2"}},"spec":{"containers":[{"name":"b"}]}}));
        let replace = json!({"spec":{"$patch":"replace","x":1}});
        assert_eq!(apply("", &cur, &replace).expect("patch")["spec"], json!({"x":1}));
    }

    #[test]
    fn unknown_lists_are_replaced() {
        let cur = json!({"spec":{"args":["a","b"]}});
        let out = apply("", &cur, &json!({"spec":{"args":["c"]}})).expect("patch");
        assert_eq!(out["spec"]["args"], json!(["c"]));
    }

    #[test]
    fn delete_from_primitive_list_removes_the_named_entries() {
        let cur = json!({"metadata":{"finalizers":["batch.kubernetes.io/job-tracking","keep"]}});
        let patch = json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["batch.kubernetes.io/job-tracking"]}});
        let out = apply("", &cur, &patch).expect("patch");
        assert_eq!(out["metadata"]["finalizers"], json!(["keep"]));
    }
}
