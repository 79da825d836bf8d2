//! Field errors worded as upstream's (k8s.io/apimachinery field errors fed by kube-openapi's validator), with Go's value printing.

use rkube_apimachinery::Cause;
use serde_json::Value;

/// How Go's `%v` prints a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits, in
/// exponent form when the exponent is below -4 or at least 6 (`1e+06`, `1.5`, `1e-05`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".to_owned() } else { "0".to_owned() };
    }
    // Rust's `{:e}` gives the same shortest digits as Go; only the exponent spelling differs.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// A number as Go holds it after decoding JSON into `interface{}` the Kubernetes way: int64 when it is
/// written as an integer that fits, float64 otherwise.
pub(crate) fn go_number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => go_float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// A string as Go's `%q` prints it (JSON string escaping matches it for everything but rare control characters).
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A bad value as `field.Error` prints it: strings quoted, simple types bare, everything else as JSON.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Number(n) => go_number(n),
        other => other.to_string(),
    }
}

fn cause(reason: &str, message: String, field: &str) -> Cause {
    Cause { reason: reason.to_owned(), message, field: field.to_owned() }
}

/// `Invalid value: <v>: <detail>` (reason FieldValueInvalid).
pub(crate) fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    cause("FieldValueInvalid", format!("Invalid value: {}: {detail}", value_text(value)), field)
}

/// `Invalid value: <v>: <detail>` with reason FieldValueTypeInvalid, as upstream reports a type mismatch.
pub(crate) fn type_invalid(field: &str, value: &Value, detail: &str) -> Cause {
    cause("FieldValueTypeInvalid", format!("Invalid value: {}: {detail}", value_text(value)), field)
}

/// `Required value` (with `: <detail>` when there is one).
pub(crate) fn required(field: &str, detail: &str) -> Cause {
    Cause::required(field, detail)
}

/// `Forbidden: <detail>`.
pub(crate) fn forbidden(field: &str, detail: &str) -> Cause {
    Cause::forbidden(field, detail)
}

/// `Duplicate value: <v>`.
pub(crate) fn duplicate(field: &str, value: &Value) -> Cause {
    cause("FieldValueDuplicate", format!("Duplicate value: {}", value_text(value)), field)
}

/// `Unsupported value: <v>: supported values: "a", "b"`; non-string allowed values are shown as JSON, quoted.
pub(crate) fn not_supported(field: &str, value: &Value, supported: &[Value]) -> Cause {
    let list: Vec<String> = supported
        .iter()
        .map(|v| match v {
            Value::String(s) => quote(s),
            other => quote(&other.to_string()),
        })
        .collect();
    let mut message = format!("Unsupported value: {}", value_text(value));
    if !list.is_empty() {
        message.push_str(&format!(": supported values: {}", list.join(", ")));
    }
    cause("FieldValueNotSupported", message, field)
}

/// `Too long: may not be more than <n> bytes` (upstream's wording, although CRD maxLength counts characters).
pub(crate) fn too_long(field: &str, max: i64) -> Cause {
    let unit = if max == 1 { "byte" } else { "bytes" };
    cause("FieldValueTooLong", format!("Too long: may not be more than {max} {unit}"), field)
}

/// `Too many: <actual>: must have at most <n> items` (also used for maxProperties, as upstream does).
pub(crate) fn too_many(field: &str, actual: usize, max: i64) -> Cause {
    let unit = if max == 1 { "item" } else { "items" };
    cause("FieldValueTooMany", format!("Too many: {actual}: must have at most {max} {unit}"), field)
}

/// The warning upstream returns for a pruned field under `fieldValidation=Warn` (and the error text under Strict).
pub fn unknown_field_warning(path: &str) -> String {
    format!("unknown field {}", quote(path))
}

/// An error list that drops exact repeats, as kube-openapi's result merging does.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<Cause>);

impl Errors {
    pub(crate) fn push(&mut self, c: Cause) {
        if !self.0.contains(&c) {
            self.0.push(c);
        }
    }

    pub(crate) fn extend(&mut self, other: Errors) {
        for c in other.0 {
            self.push(c);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
    }

    #[test]
    fn values_print_like_field_errors() {
        assert_eq!(value_text(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(value_text(&json!(11)), "11");
        assert_eq!(value_text(&json!(1.0)), "1");
        assert_eq!(value_text(&json!({"b": 1, "a": [true]})), r#"{"a":[true],"b":1}"#);
        assert_eq!(value_text(&Value::Null), "null");
    }

    #[test]
    fn not_supported_quotes_every_allowed_value() {
        let c = not_supported("spec.n", &json!(3), &[json!(1), json!("two")]);
        assert_eq!(c.message, r#"Unsupported value: 3: supported values: "1", "two""#);
    }
}
