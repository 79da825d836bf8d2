//! Label selectors as the API's `labelSelector` query parameter writes them:
//! `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3`, parsed and matched as upstream does.
//! Hand-written: no crate parses Kubernetes' selector syntax.

use std::collections::BTreeMap;

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`, `key==value`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=value`, `key notin (a,b)`: also true when the label is absent.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n`.
    Gt(String, i64),
    /// `key<n`.
    Lt(String, i64),
}

/// A selector that does not parse, with upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct ParseError(pub String);

impl Selector {
    /// True for the empty selector, which matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// A selector from `matchLabels`-style pairs.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Self {
        Selector { requirements: labels.iter().map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()])).collect() }
    }

    /// Adds one requirement (for `matchExpressions`).
    pub fn push(&mut self, r: Requirement) {
        self.requirements.push(r);
    }

    /// Parses the query-string form.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let mut p = Parser { s: input.as_bytes(), i: 0, input };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(Selector::default());
        }
        loop {
            requirements.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            p.expect(b',')?;
        }
        Ok(Selector { requirements })
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::Gt(k, n) => labels.get(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => labels.get(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    input: &'a str,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> ParseError {
        ParseError(format!("{what} at position {} in {:?}", self.i, self.input))
    }

    fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/')) {
            self.i += 1;
        }
        self.input[start..self.i].to_owned()
    }

    fn key(&mut self) -> Result<String, ParseError> {
        let k = self.word();
        if k.is_empty() {
            return Err(self.err("expected a label key"));
        }
        validate_key(&k).map_err(|why| ParseError(format!("invalid label key {k:?}: {why}")))?;
        Ok(k)
    }

    fn value(&mut self) -> Result<String, ParseError> {
        let v = self.word();
        validate_value(&v).map_err(|why| ParseError(format!("invalid label value {v:?}: {why}")))?;
        Ok(v)
    }

    fn values(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(b'(')?;
        let mut vs = Vec::new();
        loop {
            vs.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(vs);
                }
                _ => return Err(self.err("expected ',' or ')' in a value set")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, ParseError> {
        self.skip_ws();
        if self.peek() == Some(b'!') {
            self.i += 1;
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        let rest = &self.s[self.i..];
        let op_is_word =
            |w: &[u8]| rest.starts_with(w) && rest.get(w.len()).is_some_and(|c| c.is_ascii_whitespace() || *c == b'(');
        if rest.starts_with(b"==") {
            self.i += 2;
            Ok(Requirement::In(key, vec![self.value()?]))
        } else if rest.starts_with(b"!=") {
            self.i += 2;
            Ok(Requirement::NotIn(key, vec![self.value()?]))
        } else if rest.starts_with(b"=") {
            self.i += 1;
            Ok(Requirement::In(key, vec![self.value()?]))
        } else if rest.starts_with(b">") || rest.starts_with(b"<") {
            let gt = rest[0] == b'>';
            self.i += 1;
            let v = self.word();
            let n = v.parse::<i64>().map_err(|_| {
                ParseError(format!("for 'Gt', 'Lt' operators, the value must be an integer, got {v:?}"))
            })?;
            Ok(if gt { Requirement::Gt(key, n) } else { Requirement::Lt(key, n) })
        } else if op_is_word(b"in") {
            self.i += 2;
            Ok(Requirement::In(key, self.values()?))
        } else if op_is_word(b"notin") {
            self.i += 5;
            Ok(Requirement::NotIn(key, self.values()?))
        } else if self.at_end() || self.peek() == Some(b',') {
            Ok(Requirement::Exists(key))
        } else {
            Err(self.err("expected an operator (=, ==, !=, in, notin, >, <)"))
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
pub fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !p.split('.').all(is_dns_label))
    {
        return Err("prefix part must be a lowercase RFC 1123 subdomain".to_owned());
    }
    validate_name_part(name)
}

/// A label value: empty, or at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric.
pub fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    validate_name_part(v)
}

fn validate_name_part(n: &str) -> Result<(), String> {
    let ok_chars = n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let ok_ends = n.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if n.is_empty() || n.len() > 63 || !ok_chars || !ok_ends {
        return Err("must be 63 characters or less, beginning and ending with an alphanumeric character ([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and alphanumerics between".to_owned());
    }
    Ok(())
}

fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = Selector::parse("app=web, tier==fe,env!=prod,zone in (a, b),team notin (x),canary,!legacy,gen>3")
            .expect("parse");
        assert_eq!(s.requirements().len(), 8);
        let l = labels(&[("app", "web"), ("tier", "fe"), ("env", "dev"), ("zone", "b"), ("canary", ""), ("gen", "4")]);
        assert!(s.matches(&l));
        let mut l2 = l.clone();
        l2.insert("legacy".into(), "1".into());
        assert!(!s.matches(&l2));
        assert!(Selector::parse("").expect("empty").matches(&l));
    }

    #[test]
    fn notin_matches_absent_labels() {
        let s = Selector::parse("env!=prod").expect("parse");
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["app=", "=x", "a in b", "a in (b", "a b", "-a=b", "a>x"] {
            if bad == "app=" {
                // An empty value is valid upstream: it matches labels set to "".
                assert!(Selector::parse(bad).is_ok());
                continue;
            }
            assert!(Selector::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(Selector::parse("example.com/app=x").is_ok());
    }
}
