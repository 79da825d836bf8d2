//! The JSONPath subset CRD printer columns use (client-go's `jsonpath`).
//!
//! `.a.b`, `['x.y']`, `[0]`, `[-1]`, `[*]`, `.*`, `..name`, and filters `[?(@.type=="Ready")]` with `==`,
//! `!=`, `<`, `>`, `<=`, `>=` or bare existence.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `..name`: the field at any depth.
    Recursive(String),
    /// `[n]`, negative from the end.
    Index(i64),
    /// `[*]` or `.*`: every element or value.
    Wildcard,
    /// `[?(@.path op literal)]`, or `[?(@.path)]` when `op` is `None`.
    Filter(Vec<Step>, Option<(String, Value)>),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path(Vec<Step>);

impl Path {
    /// Parses a path like `.status.conditions[?(@.type=="Ready")].status`; braces around it are allowed.
    pub(crate) fn parse(s: &str) -> Option<Path> {
        let s = s.trim();
        let s = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(s).trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        parse_steps(s).map(Path)
    }

    /// Every value the path reaches in `root`, in document order; missing keys give no results.
    pub(crate) fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.0, vec![root])
    }
}

/// Parses the steps of a path (without the leading `@` inside filters).
fn parse_steps(mut s: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix("..") {
            let (name, rest) = split_name(rest);
            if name.is_empty() {
                return None;
            }
            steps.push(Step::Recursive(name.to_owned()));
            s = rest;
        } else if let Some(rest) = s.strip_prefix('.') {
            let (name, rest) = split_name(rest);
            steps.push(if name == "*" { Step::Wildcard } else { Step::Field(name.to_owned()) });
            s = rest;
        } else if s.starts_with('[') {
            let end = bracket_end(s)?;
            steps.push(parse_bracket(s.get(1..end)?.trim())?);
            s = s.get(end + 1..)?;
        } else {
            // A path may start without a dot (`metadata.name`).
            let (name, rest) = split_name(s);
            if name.is_empty() {
                return None;
            }
            steps.push(Step::Field(name.to_owned()));
            s = rest;
        }
    }
    Some(steps)
}

/// Splits a field name off the front: up to the next `.` or `[`.
fn split_name(s: &str) -> (&str, &str) {
    let end = s.find(['.', '[']).unwrap_or(s.len());
    s.split_at(end)
}

/// The index of the `]` closing the `[` at the start of `s`, skipping quoted text and nested brackets.
fn bracket_end(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses the inside of `[...]`.
fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(q) = unquote(inner) {
        return Some(Step::Field(q.to_owned()));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return parse_filter(filter.trim());
    }
    inner.parse::<i64>().ok().map(Step::Index)
}

/// The text inside matching single or double quotes.
fn unquote(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    s.strip_prefix(q)?.strip_suffix(q)
}

/// Parses `@.path op literal` or `@.path`.
fn parse_filter(f: &str) -> Option<Step> {
    const OPS: [&str; 6] = ["==", "!=", "<=", ">=", "<", ">"];
    // The first operator outside quotes splits the filter.
    let mut quote: Option<char> = None;
    let mut split = None;
    for (i, c) in f.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, _) => {
                if let Some(op) = OPS.iter().find(|op| f[i..].starts_with(**op)) {
                    split = Some((i, *op));
                    break;
                }
            }
        }
    }
    let (lhs, cmp) = match split {
        Some((i, op)) => {
            let rhs = f[i + op.len()..].trim();
            let literal = match unquote(rhs) {
                Some(text) => Value::String(text.to_owned()),
                None => serde_json::from_str(rhs).ok()?,
            };
            (f[..i].trim(), Some((op.to_owned(), literal)))
        }
        None => (f, None),
    };
    let path = lhs.strip_prefix('@')?;
    Some(Step::Filter(parse_steps(path)?, cmp))
}

/// Applies the steps to a set of current values.
fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Recursive(name) => recurse(v, name, &mut next),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                        let at = if *i < 0 { len + i } else { *i };
                        next.extend(usize::try_from(at).ok().and_then(|at| a.get(at)));
                    }
                }
                Step::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(path, cmp) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| matches(item, path, cmp.as_ref())));
                    }
                }
            }
        }
        current = next;
    }
    current
}

/// Every value of field `name` at or below `v`.
fn recurse<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            out.extend(m.get(name));
            m.values().for_each(|c| recurse(c, name, out));
        }
        Value::Array(a) => a.iter().for_each(|c| recurse(c, name, out)),
        _ => {}
    }
}

/// Whether an array element passes a filter.
fn matches(item: &Value, path: &[Step], cmp: Option<&(String, Value)>) -> bool {
    let found = eval(path, vec![item]);
    let Some((op, literal)) = cmp else { return !found.is_empty() };
    let Some(value) = found.first() else { return false };
    match (value.as_f64(), literal.as_f64()) {
        (Some(a), Some(b)) => match op.as_str() {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            ">" => a > b,
            "<=" => a <= b,
            ">=" => a >= b,
            _ => false,
        },
        _ => match op.as_str() {
            "==" => *value == literal,
            "!=" => *value != literal,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        Path::parse(path).expect("path").find(v).into_iter().cloned().collect()
    }

    #[test]
    fn paths() {
        let v = json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}
        });
        assert_eq!(find(".spec.replicas", &v), [json!(3)]);
        assert_eq!(find("{.metadata.name}", &v), [json!("a")]);
        assert_eq!(find(".metadata.labels['app.kubernetes.io/name']", &v), [json!("x")]);
        assert_eq!(find(".spec.ports[1].port", &v), [json!(443)]);
        assert_eq!(find(".spec.ports[-1].port", &v), [json!(443)]);
        assert_eq!(find(".spec.ports[*].port", &v), [json!(80), json!(443)]);
        assert_eq!(find(".status.conditions[?(@.type==\"Ready\")].status", &v), [json!("False")]);
        assert_eq!(find(".status.conditions[?(@.type != 'Ready')].type", &v), [json!("Synced")]);
        assert_eq!(find(".spec.ports[?(@.port > 100)].port", &v), [json!(443)]);
        assert_eq!(find("..port", &v), [json!(80), json!(443)]);
        assert!(find(".spec.missing", &v).is_empty());
        assert!(find(".spec.ports[5]", &v).is_empty());
        assert!(Path::parse(".a[").is_none());
    }
}
