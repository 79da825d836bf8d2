//! Ordering, equality and printing of JSON values as structured-merge-diff defines them.
//!
//! Upstream compares numbers numerically whatever their encoding (`80` equals `80.0`), orders kinds as
//! numbers < strings < bools < lists < maps < null, and prints values in paths Go-style (`"nginx"`, `80`).

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::gojson;

/// A JSON number as upstream sees it: an integer when it is one, else a float.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        Num::Float(n.as_f64().unwrap_or_default())
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        // Precision loss matches upstream, which converts ints to float64 for mixed comparisons.
        #[allow(clippy::cast_precision_loss)]
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (x, y) => as_f64(x).partial_cmp(&as_f64(y)).unwrap_or(Ordering::Equal),
    }
}

/// The rank of a value's kind in upstream's total order.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// Upstream's total order on values (`value.Compare`).
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                let c = compare(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // Keys are visited in sorted order (serde_json maps are sorted), then the shorter map first.
            for ((lk, lv), (rk, rv)) in x.iter().zip(y) {
                let c = lk.cmp(rk).then_with(|| compare(lv, rv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Upstream's deep equality (`value.Equals`): numbers compare numerically across int and float.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(l, r)| equal(l, r)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// How upstream prints a value inside a field path (`value.ToString`): strings Go-quoted, numbers bare.
pub(crate) fn to_path_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_float_v(f),
        },
        Value::String(s) => gojson::go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_path_string).collect();
            format!("[{}]", parts.join(","))
        }
        // Upstream joins map entries with nothing between them; an odd format, kept as is.
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", to_path_string(v))).collect(),
    }
}

/// Go's `%v` for a float64: the shortest representation, in exponent form outside [1e-4, 1e21).
fn go_float_v(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_across_encodings() {
        assert!(equal(&json!(80), &json!(80.0)));
        assert_eq!(compare(&json!(9000), &json!(10000)), Ordering::Less);
        assert_eq!(compare(&json!(1.5), &json!(2)), Ordering::Less);
    }

    #[test]
    fn kinds_are_ordered_like_upstream() {
        let ordered = [json!(1), json!("a"), json!(false), json!([1]), json!({"a": 1}), json!(null)];
        for w in ordered.windows(2) {
            assert_eq!(compare(&w[0], &w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn path_strings_are_go_style() {
        assert_eq!(to_path_string(&json!("nginx")), "\"nginx\"");
        assert_eq!(to_path_string(&json!(80)), "80");
        assert_eq!(to_path_string(&json!(1.5)), "1.5");
        assert_eq!(to_path_string(&json!(1e-7)), "1e-07");
        assert_eq!(to_path_string(&json!(true)), "true");
    }
}
