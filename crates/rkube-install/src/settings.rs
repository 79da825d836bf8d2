//! `/etc/rkube/config.yaml`: a map from flag names (without `--`) to values, as k3s's config file is
//! (`node-label: [a=b, c=d]`, `disable-agent: true`). This module reads and writes the file's shape; which keys
//! exist and what each accepts is the command line's business (the `rkube` crate checks them against clap).

use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

use crate::{Error, Result};

/// The config file's default path.
pub const DEFAULT_PATH: &str = "/etc/rkube/config.yaml";

/// One setting's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `true`/`false`.
    Bool(bool),
    /// A string or number, as text.
    Text(String),
    /// A list of scalars (each as text): a repeated flag.
    List(Vec<String>),
}

/// One `key: value` of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The flag's long name without `--`.
    pub key: String,
    /// Its value.
    pub value: Value,
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a map",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// Parses the file's text (`path` names it in errors). An empty file has no settings.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Setting>> {
    let err = |message: String| Error::Config { path: path.to_path_buf(), message };
    let doc: Yaml = serde_yaml::from_str(text).map_err(|e| err(format!("not valid YAML: {e}")))?;
    let map = match doc {
        Yaml::Null => return Ok(Vec::new()),
        Yaml::Mapping(m) => m,
        other => {
            return Err(err(format!(
                "the file holds {}; it must be a map of flag names to values, like `node-name: n1`",
                kind(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str().map(str::to_owned) else {
            return Err(err(format!("key {k:?} is not a flag name; keys are flag names like `data-dir`")));
        };
        let key = key.trim_start_matches("--").to_owned();
        let value = match &v {
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Number(_) | Yaml::String(_) => Value::Text(scalar(&v).unwrap_or_default()),
            Yaml::Sequence(items) => Value::List(
                items
                    .iter()
                    .map(|i| {
                        scalar(i).ok_or_else(|| {
                            err(format!("key {key}: list items must be strings or numbers, not {}", kind(i)))
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            other => {
                return Err(err(format!(
                    "key {key} has {}; give a value (`{key}: VALUE`) or a list (`{key}: [A, B]`)",
                    kind(other)
                )));
            }
        };
        out.push(Setting { key, value });
    }
    Ok(out)
}

/// Reads the file at `path`; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<Setting>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { what: "reading", path: path.to_path_buf(), source }),
    }
}

/// Scalars typed back as YAML reads them best: `true`, `6443` unquoted, everything else a string.
fn typed(s: &str) -> Yaml {
    match s {
        "true" => Yaml::Bool(true),
        "false" => Yaml::Bool(false),
        _ => match s.parse::<u64>() {
            Ok(n) if n.to_string() == s => Yaml::Number(n.into()),
            _ => Yaml::String(s.to_owned()),
        },
    }
}

/// The file's text for `settings` (in order), with a header saying what wrote it.
pub fn render(header: &str, settings: &[Setting]) -> String {
    let mut map = serde_yaml::Mapping::new();
    for s in settings {
        let v = match &s.value {
            Value::Bool(b) => Yaml::Bool(*b),
            Value::Text(t) => typed(t),
            Value::List(items) => Yaml::Sequence(items.iter().map(|i| typed(i)).collect()),
        };
        map.insert(Yaml::String(s.key.clone()), v);
    }
    let body = if map.is_empty() { String::new() } else { serde_yaml::to_string(&map).unwrap_or_default() };
    let mut out: String = header.lines().map(|l| format!("# {l}\n")).collect();
    out.push_str(&body);
    out
}

/// The value of `key` in `settings` (the last one given) as single text, if set.
pub fn text<'a>(settings: &'a [Setting], key: &str) -> Option<&'a str> {
    settings.iter().rev().find(|s| s.key == key).and_then(|s| match &s.value {
        Value::Text(t) => Some(t.as_str()),
        Value::List(l) => l.last().map(String::as_str),
        Value::Bool(_) => None,
    })
}

/// The value of `key` as a path, if set.
pub fn path(settings: &[Setting], key: &str) -> Option<PathBuf> {
    text(settings, key).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/etc/rkube/config.yaml")
    }

    #[test]
    fn reads_k3s_style_files() {
        let s = parse(p(), "node-label: [a=b, c=d]\ndisable-agent: true\nhttps-listen-port: 6444\n--data-dir: /x\n")
            .unwrap();
        assert_eq!(s[0], Setting { key: "node-label".into(), value: Value::List(vec!["a=b".into(), "c=d".into()]) });
        assert_eq!(s[1].value, Value::Bool(true));
        assert_eq!(s[2].value, Value::Text("6444".into()));
        assert_eq!(s[3].key, "data-dir");
        assert!(parse(p(), "").unwrap().is_empty());
        assert!(parse(p(), "# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn wrong_shapes_name_the_file_and_key() {
        let e = parse(p(), "- a\n- b\n").unwrap_err().to_string();
        assert!(e.starts_with("/etc/rkube/config.yaml: the file holds a list"), "{e}");
        let e = parse(p(), "node-label: {a: b}\n").unwrap_err().to_string();
        assert!(e.contains("key node-label has a map"), "{e}");
        let e = parse(p(), "tls-san: [[a]]\n").unwrap_err().to_string();
        assert!(e.contains("key tls-san: list items"), "{e}");
        let e = parse(p(), "data-dir:\n").unwrap_err().to_string();
        assert!(e.contains("key data-dir has nothing"), "{e}");
        let e = parse(p(), "a: [b\n").unwrap_err().to_string();
        assert!(e.contains("not valid YAML"), "{e}");
    }

    #[test]
    fn render_reads_back() {
        let settings = vec![
            Setting { key: "disable-agent".into(), value: Value::Bool(true) },
            Setting { key: "https-listen-port".into(), value: Value::Text("6444".into()) },
            Setting { key: "allocate-node-cidrs".into(), value: Value::Text("false".into()) },
            Setting { key: "tls-san".into(), value: Value::List(vec!["a.example".into(), "10.0.0.1".into()]) },
            Setting { key: "node-name".into(), value: Value::Text("yes".into()) },
        ];
        let rendered = render("written by rkube install", &settings);
        assert!(rendered.starts_with("# written by rkube install\n"), "{rendered}");
        assert!(rendered.contains("https-listen-port: 6444\n"), "{rendered}");
        let back = parse(p(), &rendered).unwrap();
        assert_eq!(back[0], settings[0]);
        assert_eq!(back[1], settings[1]);
        assert_eq!(back[2].value, Value::Bool(false));
        assert_eq!(back[3], settings[3]);
        assert_eq!(back[4], settings[4], "a YAML 1.1 boolean word stays a string:\n{rendered}");
        assert_eq!(text(&back, "node-name"), Some("yes"));
    }
}
