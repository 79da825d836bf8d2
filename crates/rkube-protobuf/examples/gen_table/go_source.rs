//! Reads JSON facts about each proto field out of upstream's Go API types: the JSON name, `omitempty`,
//! pointer-ness and `,inline`, joined to protobuf by the field number in each field's `protobuf:"..."` tag.
//!
//! The Go struct tags are the one source that knows whether a scalar is a pointer (an explicit
//! `replicas: 0` must survive) or a plain value with `omitempty` (an empty `namespace` must vanish).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// What a Go struct field says about JSON.
#[derive(Clone, Debug)]
pub(crate) struct GoField {
    /// The JSON key; empty for `,inline` fields.
    pub(crate) json: String,
    /// `json:"...,omitempty"`.
    pub(crate) omitempty: bool,
    /// The Go type starts with `*`.
    pub(crate) pointer: bool,
    /// The Go type is a slice or map (`[]T`, `[]byte`, `map[K]V`): nil unless set, like a pointer.
    pub(crate) nillable: bool,
    /// `json:",inline"`: the nested message's keys are merged into the parent.
    pub(crate) inline: bool,
    /// `json:"-"`: never written in JSON.
    pub(crate) skip: bool,
}

/// One Go package's API types.
#[derive(Debug, Default)]
pub(crate) struct GoPackage {
    /// `const GroupName` from register.go, if the package is an API group version.
    pub(crate) group: Option<String>,
    /// Struct name → protobuf field number → JSON facts.
    pub(crate) structs: BTreeMap<String, BTreeMap<u32, GoField>>,
    /// Structs that embed `TypeMeta`: the package's kinds.
    pub(crate) kinds: BTreeSet<String>,
    /// Named slice types (`type Verbs []string`), whose proto form is a message wrapping `items`.
    pub(crate) slices: BTreeSet<String>,
    /// Types defined as another package's struct (`type MatchCondition v1.MatchCondition`):
    /// name → (import path, name there).
    pub(crate) foreign: BTreeMap<String, (String, String)>,
}

/// Reads every non-test `.go` file of one package directory.
pub(crate) fn read_package(dir: &Path) -> Result<GoPackage, String> {
    let mut pkg = GoPackage::default();
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.ends_with(".go") && !n.ends_with("_test.go")
        })
        .collect();
    names.sort();
    for path in names {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse_file(&text, &mut pkg).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(pkg)
}

fn parse_file(text: &str, pkg: &mut GoPackage) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let imports = imports(&lines);
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // register.go's constant is what the scheme registers; not every package has a `+groupName=` tag.
        if let Some(g) = line.strip_prefix("const GroupName = ") {
            pkg.group = Some(g.trim().trim_matches('"').to_string());
        }
        if let Some(rest) = line.strip_prefix("type ") {
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let def = words.next().unwrap_or_default();
            if def.starts_with("[]") && def != "[]byte" {
                pkg.slices.insert(name.clone());
            }
            // `type X = v1.Y` or `type X v1.Y`: the fields are v1.Y's.
            let target = if def == "=" { words.next().unwrap_or_default() } else { def };
            let foreign = target.split_once('.').and_then(|(alias, there)| Some((imports.get(alias)?, there)));
            if let Some((path, there)) = foreign {
                pkg.foreign.insert(name.clone(), (path.clone(), there.to_string()));
            }
            if def == "struct{}" {
                pkg.structs.insert(name.clone(), BTreeMap::new());
            }
            if def == "struct" && rest.trim_end().ends_with('{') {
                let mut fields = BTreeMap::new();
                i += 1;
                while i < lines.len() && lines[i] != "}" {
                    let l = lines[i].trim();
                    if !l.starts_with("//") && l.contains('`') {
                        let (decl, tags) = split_tags(l);
                        let words: Vec<&str> = decl.split_whitespace().collect();
                        let ty = if words.len() == 1 { words[0] } else { words.get(1).copied().unwrap_or_default() };
                        if ty.trim_start_matches('*').ends_with("TypeMeta")
                            && tag_value(tags, "json") == Some(",inline")
                        {
                            pkg.kinds.insert(name.clone());
                        }
                        let Some((num, field)) = parse_field(ty, tags)? else {
                            i += 1;
                            continue;
                        };
                        if fields.insert(num, field).is_some() {
                            return Err(format!("{name}: protobuf field {num} twice"));
                        }
                    }
                    i += 1;
                }
                pkg.structs.insert(name, fields);
            }
        }
        i += 1;
    }
    Ok(())
}

/// Import alias → import path.
fn imports(lines: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_block = false;
    for line in lines {
        let l = line.trim();
        let spec = if in_block {
            if l == ")" {
                in_block = false;
                continue;
            }
            l
        } else if l == "import (" {
            in_block = true;
            continue;
        } else if let Some(rest) = l.strip_prefix("import ") {
            rest
        } else {
            continue;
        };
        let mut words = spec.split_whitespace();
        let (alias, path) = match (words.next(), words.next()) {
            (Some(a), Some(p)) => (a.to_string(), p.trim_matches('"').to_string()),
            (Some(p), None) => {
                let p = p.trim_matches('"');
                (p.rsplit('/').next().unwrap_or(p).to_string(), p.to_string())
            }
            _ => continue,
        };
        out.insert(alias, path);
    }
    out
}

fn split_tags(line: &str) -> (&str, &str) {
    let start = line.find('`').unwrap_or(line.len());
    let rest = &line[start..];
    let tags = rest.trim_start_matches('`');
    let tags = tags.split('`').next().unwrap_or_default();
    (&line[..start], tags)
}

/// The value of `key:"value"` in a Go struct tag.
fn tag_value<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("{key}:\"");
    let start = tags.find(&needle)? + needle.len();
    let rest = &tags[start..];
    Some(&rest[..rest.find('"')?])
}

fn parse_field(ty: &str, tags: &str) -> Result<Option<(u32, GoField)>, String> {
    let Some(pb) = tag_value(tags, "protobuf") else { return Ok(None) };
    if pb == "-" {
        return Ok(None);
    }
    let num = pb.split(',').nth(1).and_then(|n| n.parse().ok()).ok_or_else(|| format!("bad protobuf tag {pb:?}"))?;
    let json = tag_value(tags, "json").unwrap_or_default();
    let mut opts = json.split(',');
    let name = opts.next().unwrap_or_default().to_string();
    let opts: Vec<&str> = opts.collect();
    let field = GoField {
        inline: name.is_empty() && opts.contains(&"inline"),
        skip: name == "-",
        omitempty: opts.contains(&"omitempty"),
        pointer: ty.starts_with('*'),
        nillable: ty.starts_with("[]") || ty.starts_with("map["),
        json: name,
    };
    // A field with neither a JSON name nor `inline` (IntOrString's) only occurs in types with their
    // own JSON encoding; the generator rejects it anywhere else.
    Ok(Some((num, field)))
}
