//! Field selectors (`fieldSelector=metadata.name=x,status.phase!=Running`): equality only, as upstream;
//! each kind says which fields it supports.

/// A parsed field selector: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// (field, value, equal?) triples.
    requirements: Vec<(String, String, bool)>,
}

/// A field selector that does not parse or names a field the kind does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldSelectorError(pub String);

impl FieldSelector {
    /// Parses the query-string form. `\,` `\=` `\\` escape those characters in values, as upstream.
    pub fn parse(input: &str) -> Result<Self, FieldSelectorError> {
        let mut requirements = Vec::new();
        for part in split_unescaped(input, ',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(FieldSelectorError(format!("invalid selector: '{input}'; can't understand '{part}'")));
            };
            requirements.push((field.trim().to_owned(), unescape(value.trim()), eq));
        }
        Ok(FieldSelector { requirements })
    }

    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Refuses fields the kind does not support, with upstream's message.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), FieldSelectorError> {
        for (field, _, _) in &self.requirements {
            if !supported.contains(&field.as_str()) {
                let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
                return Err(FieldSelectorError(format!(
                    "\"{field}\" is not a known field selector: only {}",
                    list.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether an object whose fields read as `lookup(field)` satisfies every requirement.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|(field, value, eq)| {
            let actual = lookup(field).unwrap_or_default();
            (actual == *value) == *eq
        })
    }

    /// The value required for `field` by an equality requirement, if any (lets callers narrow a scan).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find(|(f, _, eq)| f == field && *eq).map(|(_, v, _)| v.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next()
                && let Some(last) = parts.last_mut()
            {
                last.push('\\');
                last.push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let s = FieldSelector::parse("metadata.name=a\\,b,status.phase!=Running").expect("parse");
        let obj = |f: &str| match f {
            "metadata.name" => Some("a,b".to_owned()),
            "status.phase" => Some("Pending".to_owned()),
            _ => None,
        };
        assert!(s.matches(obj));
        assert_eq!(s.required_value("metadata.name"), Some("a,b"));
        assert!(s.check_supported(&["metadata.name", "metadata.namespace"]).is_err());
        let e = FieldSelector::parse("spec.foo=1")
            .expect("parse")
            .check_supported(&["metadata.name", "metadata.namespace"])
            .expect_err("unsupported");
        assert_eq!(e.0, "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"");
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
