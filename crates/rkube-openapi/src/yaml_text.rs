//! JSON values as the block YAML text gnostic stores in `Any.yaml` (vendor extensions, defaults, enums).
//!
//! gnostic parses the JSON document with go-yaml v3, clears the nodes' styles and marshals each `Any`
//! back, so upstream's text is block YAML indented by four, one trailing newline. Clients (kubectl's
//! `VendorExtensionToMap`) only parse it with go-yaml v2, a YAML 1.1 parser, so what matters is that the
//! text reads back as the same value there: strings are plain only when plainly strings (never `yes`,
//! `on`, `null`, numbers or anything with YAML punctuation) and double-quoted otherwise.

use serde_json::{Map, Value};

/// Spaces per nesting level, as go-yaml v3 writes.
const INDENT: usize = 4;

/// The YAML text of a value, ending in a newline.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        _ => {
            scalar(&mut out, value);
            out.push('\n');
        }
    }
    out
}

/// A block mapping at column `indent`; `inline` when its first key follows a `- ` already written.
fn mapping(out: &mut String, m: &Map<String, Value>, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        string(out, k);
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                mapping(out, m, indent + INDENT, false);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, a, indent + INDENT);
            }
            _ => {
                out.push(' ');
                scalar(out, v);
                out.push('\n');
            }
        }
    }
}

/// A block sequence at column `indent`; collections in it start on the `- ` line, two columns in.
fn sequence(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        pad(out, indent);
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => mapping(out, m, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => {
                // The nested sequence's first item shares this line; the rest align under it.
                let mut nested = String::new();
                sequence(&mut nested, inner, indent + 2);
                out.push_str(nested.trim_start_matches(' '));
            }
            _ => {
                scalar(out, v);
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A scalar, or an empty collection in flow style.
fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn string(out: &mut String, s: &str) {
    if is_plain(s) {
        out.push_str(s);
    } else {
        quoted(out, s);
    }
}

/// YAML 1.1 words that resolve to booleans or null when plain (compared case-insensitively, which
/// quotes a few strings needlessly and none wrongly).
const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

/// Whether `s` reads back as this very string when written plain: it starts with a letter, `_` or `/`
/// (so it is no number, no indicator, no `.inf`) and has only letters, digits and `_./-,` and inner
/// single spaces (so no `: `, ` #`, flow or quote characters).
fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && !s.ends_with(' ')
        && !s.contains("  ")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./-, ".contains(c))
        && !RESERVED.iter().any(|r| s.eq_ignore_ascii_case(r))
}

/// A double-quoted scalar. Printable characters stay as they are; the rest (controls, the YAML line
/// breaks U+0085/U+2028/U+2029, the BOM and other non-printables) are escaped.
fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
}

/// YAML's printable non-ASCII characters.
fn printable(c: char) -> bool {
    let c = u32::from(c);
    (0xa0..=0xd7ff).contains(&c) && c != 0x2028 && c != 0x2029
        || (0xe000..=0xfffd).contains(&c) && c != 0xfeff
        || (0x10000..=0x10ffff).contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_as_go_yaml_does() {
        assert_eq!(to_yaml(&json!("merge")), "merge\n");
        assert_eq!(to_yaml(&json!("retainKeys,merge")), "retainKeys,merge\n");
        assert_eq!(to_yaml(&json!(true)), "true\n");
        assert_eq!(to_yaml(&json!(["name", "protocol"])), "- name\n- protocol\n");
        assert_eq!(
            to_yaml(&json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])),
            "- group: apps\n  kind: Deployment\n  version: v1\n"
        );
        assert_eq!(
            to_yaml(&json!([{"group": "", "kind": "Pod", "version": "v1"}])),
            "- group: \"\"\n  kind: Pod\n  version: v1\n"
        );
        assert_eq!(
            to_yaml(&json!({"a": {"b": [1, {"c": "d", "e": []}]}})),
            "a:\n    b:\n        - 1\n        - c: d\n          e: []\n"
        );
    }

    #[test]
    fn reads_back_as_the_same_value() {
        let values = [
            json!("yes"),
            json!("On"),
            json!("1"),
            json!("1.5e3"),
            json!(""),
            json!("a: b"),
            json!("a #b"),
            json!("- x"),
            json!("*x"),
            json!("line\nbreak\ttab \"q\" \\ \u{85}\u{2028}\u{feff}é漢😀\u{1}"),
            json!(" lead"),
            json!("null"),
            json!("~"),
            json!(null),
            json!(-3),
            json!(0.25),
            json!(1e30),
            json!({"": "empty key", "yes": "no", "k": [[1, 2], [], {}, [{"a": [3]}]]}),
            json!([[["deep"]], {"x": {"y": {}}}]),
        ];
        for v in values {
            let text = to_yaml(&v);
            let back: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(back, v, "{text:?}");
        }
    }
}
