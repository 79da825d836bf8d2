//! OpenAPI value validation of custom objects, in the order and wording of kube-openapi's validator as the
//! apiextensions-apiserver turns its results into field errors.

use serde_json::{Map, Number, Value};

use crate::formats;
use crate::messages::{self, Errors, go_float, quote};
use crate::node::{Additional, Node};

/// Where errors land: `prefix` is the field path the validated value sits at (empty for a whole object),
/// `name` is kube-openapi's dotted path inside it (`spec.items[2].name`), which messages repeat.
fn field(prefix: &str, name: &str) -> String {
    let name = name.strip_prefix('.').unwrap_or(name);
    match (prefix.is_empty(), name.is_empty()) {
        (_, true) => prefix.to_owned(),
        (true, false) => name.to_owned(),
        (false, false) => format!("{prefix}.{name}"),
    }
}

/// kube-openapi's child name for a property: `name.key`, or `key` at the root.
fn child_name(name: &str, key: &str) -> String {
    if name.is_empty() { key.to_owned() } else { format!("{name}.{key}") }
}

/// Validates `data` against `node`; `name` is the kube-openapi path of `data` and `prefix` the field path
/// the whole validated value sits at.
pub(crate) fn check(node: &Node, data: &Value, name: &str, prefix: &str, out: &mut Errors) {
    if data.is_null() {
        // kube-openapi runs only the type and enum checks on null.
        check_type(node, data, name, prefix, out);
        check_enum(node, data, name, prefix, out);
        return;
    }
    check_type(node, data, name, prefix, out);
    check_junctors(node, data, name, prefix, out);
    match data {
        Value::String(s) => {
            check_string(node, s, name, prefix, out);
            check_format(node, s, name, prefix, out);
        }
        Value::Number(n) => check_number(node, n, name, prefix, out),
        Value::Array(a) => check_array(node, a, name, prefix, out),
        _ => {}
    }
    check_enum(node, data, name, prefix, out);
    if let Value::Object(m) = data {
        check_object(node, m, name, prefix, out);
    }
}

/// The JSON type of a value and the format Go would infer from its decoded type.
fn json_type(data: &Value) -> (&'static str, &'static str) {
    match data {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// swag.IsFloat64AJSONInteger: integral within JSON's safe range, with a small relative tolerance.
pub(crate) fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    let g = f.trunc();
    if f == g {
        return true;
    }
    (f - g).abs() / (f.abs() + g.abs()) < 1e-9
}

fn check_type(node: &Node, data: &Value, name: &str, prefix: &str, out: &mut Errors) {
    let types = node.types();
    if types.is_empty() {
        return;
    }
    let joined = types.join(",");
    if data.is_null() {
        if !node.nullable {
            let msg = format!("{name} in body must be of type {joined}: \"null\"");
            out.push(messages::type_invalid(&field(prefix, name), &Value::from("null"), &msg));
        }
        return;
    }
    let format = formats::effective(node);
    let (sch, data_format) = json_type(data);
    let float_int = sch == "number" && data.as_f64().is_some_and(is_json_integer) && types.contains(&"integer");
    let int_float = sch == "integer" && types.contains(&"number");
    let stringish = matches!(data, Value::String(_) | Value::Array(_));
    let type_ok = types.contains(&sch) || float_int || int_float;
    if !(stringish || format.is_empty() || type_ok || data_format == format) {
        // kube-openapi names the schema's format as the expected type here, and the value's Go format as the data.
        let msg = format!("{name} in body must be of type {format}: {}", quote(data_format));
        out.push(messages::type_invalid(&field(prefix, name), &Value::from(data_format), &msg));
        return;
    }
    // A string format on a string (or array) value is the format check's business, not the type's.
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if stringish && !numeric && !format.is_empty() {
        return;
    }
    if !type_ok {
        let msg = format!("{name} in body must be of type {joined}: {}", quote(sch));
        out.push(messages::type_invalid(&field(prefix, name), &Value::from(sch), &msg));
    }
}

/// allOf/anyOf/oneOf/not as kube-openapi's schemaPropsValidator: the junctor's own error plus the errors
/// of the closest failing branch. Composite errors carry no field upstream; rkube puts them at the value.
fn check_junctors(node: &Node, data: &Value, name: &str, prefix: &str, out: &mut Errors) {
    let at = field(prefix, name);
    let composite = |detail: String| messages::invalid(&at, &Value::from(""), &detail);
    let run = |s: &Node| {
        let mut e = Errors::default();
        check(s, data, name, prefix, &mut e);
        e
    };
    if !node.any_of.is_empty() {
        let mut best: Option<Errors> = None;
        let mut ok = false;
        for s in &node.any_of {
            let e = run(s);
            if e.is_empty() {
                ok = true;
                break;
            }
            // kube-openapi keeps the branch with the most passing checks; the fewest errors is the closest we track.
            if best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if !ok {
            out.push(composite(format!("{} must validate at least one schema (anyOf)", quote(name))));
            if let Some(b) = best {
                out.extend(b);
            }
        }
    }
    if !node.one_of.is_empty() {
        let mut best: Option<Errors> = None;
        let mut valid = 0;
        for s in &node.one_of {
            let e = run(s);
            if e.is_empty() {
                valid += 1;
            } else if valid == 0 && best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if valid != 1 {
            let found =
                if valid == 0 { "Found none valid".to_owned() } else { format!("Found {valid} valid alternatives") };
            out.push(composite(format!("{} must validate one and only one schema (oneOf). {found}", quote(name))));
            if valid == 0
                && let Some(b) = best
            {
                out.extend(b);
            }
        }
    }
    if !node.all_of.is_empty() {
        let mut valid = 0;
        let mut all = Errors::default();
        for s in &node.all_of {
            let e = run(s);
            if e.is_empty() {
                valid += 1;
            }
            all.extend(e);
        }
        out.extend(all);
        if valid != node.all_of.len() {
            let none = if valid == 0 { ". None validated" } else { "" };
            out.push(composite(format!("{} must validate all the schemas (allOf){none}", quote(name))));
        }
    }
    if let Some(not) = &node.not
        && run(not).is_empty()
    {
        out.push(composite(format!("{} must not validate the schema (not)", quote(name))));
    }
}

/// maxLength, then minLength, then pattern; kube-openapi stops at the first failure.
fn check_string(node: &Node, s: &str, name: &str, prefix: &str, out: &mut Errors) {
    let at = field(prefix, name);
    let len = s.chars().count() as i64;
    if let Some(max) = node.max_length
        && len > max
    {
        out.push(messages::too_long(&at, max));
        return;
    }
    if let Some(min) = node.min_length
        && len < min
    {
        out.push(messages::invalid(
            &at,
            &Value::from(s),
            &format!("{name} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some(p) = &node.pattern {
        let detail = match &p.regex {
            Ok(re) if re.is_match(s) => return,
            Ok(_) => format!("{name} in body should match '{}'", p.source),
            Err(e) => format!("{name} in body should match '{}, but pattern is invalid: {e}'", p.source),
        };
        out.push(messages::invalid(&at, &Value::from(s), &detail));
    }
}

fn check_format(node: &Node, s: &str, name: &str, prefix: &str, out: &mut Errors) {
    let format = formats::effective(node);
    if format.is_empty() || !formats::is_string_format(format) || formats::is_valid(format, s) {
        return;
    }
    let msg = format!("{name} in body must be of type {format}: {}", quote(s));
    out.push(messages::type_invalid(&field(prefix, name), &Value::from(s), &msg));
}

/// How a number meets a bound: as int64 (integer data, integral bound, printed as an integer) or as float64.
enum Num {
    Int(i64),
    Float(f64),
}

fn check_number(node: &Node, n: &Number, name: &str, prefix: &str, out: &mut Errors) {
    let at = field(prefix, name);
    let value = Value::Number(n.clone());
    let f = n.as_f64().unwrap_or(f64::NAN);
    // kube-openapi compares integer data with bounds truncated to int64. With a fractional bound that
    // misjudges (an exclusive maximum of 2.5 would reject 2; a multipleOf of 0.5 becomes 0 and is reported
    // as not positive), so rkube compares as floats then.
    let data = |bound: f64| match n.as_i64() {
        Some(i) if bound.fract() == 0.0 => Num::Int(i),
        _ => Num::Float(f),
    };
    // Newer kube-openapi checks that a value fits the declared format (int32, float); rkube keeps that part.
    let types = node.types();
    let format = formats::effective(node);
    let (single, fits) = match (types.as_slice(), format) {
        // A fractional value already failed the type check; only the range is checked here.
        (["integer"], "int32") => ("integer", f.trunc() != f || (f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX))),
        (["number"], "float") => ("number", f.abs() <= f64::from(f32::MAX)),
        _ => ("", true),
    };
    if !fits {
        let detail = format!("Checked value must be of type {single} with format {format} in {name}");
        out.push(messages::invalid(&at, &Value::from(""), &detail));
    }
    if let Some(m) = node.multiple_of {
        match data(m) {
            Num::Int(i) => {
                let factor = m as i64;
                if factor <= 0 {
                    let detail = format!("factor MultipleOf declared for {name} must be positive: {factor}");
                    out.push(messages::invalid(&at, &Value::from(factor), &detail));
                } else if i % factor != 0 {
                    out.push(messages::invalid(
                        &at,
                        &value,
                        &format!("{name} in body should be a multiple of {factor}"),
                    ));
                }
            }
            Num::Float(d) => {
                if m <= 0.0 {
                    let detail = format!("factor MultipleOf declared for {name} must be positive: {}", go_float(m));
                    out.push(messages::invalid(&at, &Value::from(m), &detail));
                } else {
                    let mult = if m < 1.0 { 1.0 / m * d } else { d / m };
                    if !is_json_integer(mult) {
                        let detail = format!("{name} in body should be a multiple of {}", go_float(m));
                        out.push(messages::invalid(&at, &value, &detail));
                    }
                }
            }
        }
    }
    // kube-openapi reports the minimum before the maximum.
    if let Some(min) = node.minimum {
        let ex = node.exclusive_minimum;
        let (fails, bound) = match data(min) {
            Num::Int(i) => {
                let b = min as i64;
                (if ex { i <= b } else { i < b }, b.to_string())
            }
            Num::Float(d) => (if ex { d <= min } else { d < min }, go_float(min)),
        };
        if fails {
            let op = if ex { "greater than" } else { "greater than or equal to" };
            out.push(messages::invalid(&at, &value, &format!("{name} in body should be {op} {bound}")));
        }
    }
    if let Some(max) = node.maximum {
        let ex = node.exclusive_maximum;
        let (fails, bound) = match data(max) {
            Num::Int(i) => {
                let b = max as i64;
                (if ex { i >= b } else { i > b }, b.to_string())
            }
            Num::Float(d) => (if ex { d >= max } else { d > max }, go_float(max)),
        };
        if fails {
            let op = if ex { "less than" } else { "less than or equal to" };
            out.push(messages::invalid(&at, &value, &format!("{name} in body should be {op} {bound}")));
        }
    }
}

fn check_array(node: &Node, a: &[Value], name: &str, prefix: &str, out: &mut Errors) {
    if let Some(items) = &node.items {
        for (i, v) in a.iter().enumerate() {
            check(items, v, &format!("{name}[{i}]"), prefix, out);
        }
    }
    let at = field(prefix, name);
    let size = a.len();
    if let Some(min) = node.min_items
        && (size as i64) < min
    {
        out.push(messages::invalid(
            &at,
            &Value::from(size),
            &format!("{name} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = node.max_items
        && (size as i64) > max
    {
        out.push(messages::too_many(&at, size, max));
    }
    if node.unique_items && a.iter().enumerate().any(|(i, x)| a[..i].iter().any(|y| json_equal(x, y))) {
        out.push(messages::invalid(&at, &Value::from(""), &format!("{name} in body shouldn't contain duplicates")));
    }
}

/// JSON equality with numbers compared by value (Go compares enum members after numeric conversion).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn check_enum(node: &Node, data: &Value, name: &str, prefix: &str, out: &mut Errors) {
    let Some(values) = node.enumeration.as_deref().filter(|v| !v.is_empty()) else { return };
    if !values.iter().any(|e| json_equal(data, e)) {
        out.push(messages::not_supported(&field(prefix, name), data, values));
    }
}

fn check_object(node: &Node, m: &Map<String, Value>, name: &str, prefix: &str, out: &mut Errors) {
    let at = field(prefix, name);
    let n = m.len();
    if let Some(min) = node.min_properties
        && (n as i64) < min
    {
        out.push(messages::invalid(
            &at,
            &Value::from(n),
            &format!("{name} in body should have at least {min} properties"),
        ));
    }
    if let Some(max) = node.max_properties
        && (n as i64) > max
    {
        out.push(messages::too_many(&at, n, max));
    }
    match &node.additional {
        Some(Additional::Allows(false)) => {
            for k in m.keys().filter(|k| !node.properties.contains_key(*k)) {
                out.push(messages::invalid(
                    &at,
                    &Value::from(k.as_str()),
                    &format!("{name}.{k} in body is a forbidden property"),
                ));
            }
        }
        Some(Additional::Schema(s)) => {
            for (k, v) in m.iter().filter(|(k, _)| !node.properties.contains_key(*k)) {
                check(s, v, &format!("{name}.{k}"), prefix, out);
            }
        }
        _ => {}
    }
    for (k, p) in &node.properties {
        if let Some(v) = m.get(k) {
            check(p, v, &child_name(name, k), prefix, out);
        }
    }
    for k in &node.required {
        if !m.contains_key(k) {
            out.push(messages::required(&field(prefix, &format!("{name}.{k}")), ""));
        }
    }
}
