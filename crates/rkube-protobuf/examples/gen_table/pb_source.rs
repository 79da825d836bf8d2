//! Reads the message shapes (field tags, wire types, nesting) out of k8s-pb's prost-generated Rust source.
//!
//! Shared by the table generator and the test that checks the checked-in table is current.
//! The source is machine-written by prost-build and rustfmt, so a line-based reader is enough and
//! keeps `syn` out of the build; any line it cannot read is an error, never a silent skip.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The wire shape of one k8s-pb field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PbType {
    /// A scalar: `string`, `bytes`, `bool`, `int32`, `int64` or `double`.
    Scalar(String),
    /// A nested message, by its module path and Rust name (`api/core/v1`, `PodSpec`).
    Message(String, String),
    /// `map<string, scalar>` (`string` or `bytes`).
    MapScalar(String),
    /// `map<string, message>`.
    MapMessage(String, String),
}

/// One k8s-pb field.
#[derive(Clone, Debug)]
pub(crate) struct PbField {
    /// The protobuf field number.
    pub(crate) tag: u32,
    /// The Rust field name (snake case, `r#` removed).
    pub(crate) rust_name: String,
    /// The wire shape.
    pub(crate) ty: PbType,
    /// `repeated`.
    pub(crate) repeated: bool,
}

/// One k8s-pb message.
#[derive(Clone, Debug)]
pub(crate) struct PbMessage {
    /// The module path below `src/`, with `/` separators (`api/core/v1`).
    pub(crate) module: String,
    /// The Rust struct name (k8s-pb changes acronym case: `HostIp` for Go's `HostIP`).
    pub(crate) rust_name: String,
    /// Fields in source order.
    pub(crate) fields: Vec<PbField>,
}

/// Every message in a k8s-pb `src/` directory, keyed by (module, Rust name).
pub(crate) fn read_k8s_pb(src: &Path) -> Result<BTreeMap<(String, String), PbMessage>, String> {
    let mut files = Vec::new();
    collect_mod_files(src, &mut files)?;
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file
            .parent()
            .and_then(|d| d.strip_prefix(src).ok())
            .ok_or_else(|| format!("{} is not below {}", file.display(), src.display()))?;
        let module = rel.to_string_lossy().replace('\\', "/");
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        if !text.contains("::prost::Message") {
            continue;
        }
        for msg in parse_module(&module, &text).map_err(|e| format!("{}: {e}", file.display()))? {
            out.insert((msg.module.clone(), msg.rust_name.clone()), msg);
        }
    }
    Ok(out)
}

fn collect_mod_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_mod_files(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "mod.rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn parse_module(module: &str, text: &str) -> Result<Vec<PbMessage>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // Only structs deriving prost::Message are messages; other structs (none today) are ignored.
        let is_message = i > 0 && lines[i - 1].contains("::prost::Message");
        if let (true, Some(name)) = (is_message, line.strip_prefix("pub struct ")) {
            // A message without fields is written `pub struct X {}` on one line.
            let empty = name.ends_with("{}");
            let name = name.trim_end_matches("{}").trim_end_matches('{').trim().to_string();
            let mut fields = Vec::new();
            if !empty {
                i += 1;
            }
            while !empty && i < lines.len() && lines[i] != "}" {
                let l = lines[i].trim();
                if let Some(attr) = l.strip_prefix("#[prost(") {
                    let attr = attr.trim_end_matches(")]");
                    // The declaration may wrap over several lines; it ends at a `,` outside `<>`.
                    let mut decl = String::new();
                    i += 1;
                    while i < lines.len() {
                        decl.push_str(lines[i].trim());
                        if decl.ends_with(',') && depth(&decl) == 0 {
                            break;
                        }
                        i += 1;
                    }
                    fields.push(parse_field(module, attr, &decl).map_err(|e| format!("{name}: {e}"))?);
                }
                i += 1;
            }
            out.push(PbMessage { module: module.to_string(), rust_name: name, fields });
        }
        i += 1;
    }
    Ok(out)
}

fn depth(s: &str) -> i32 {
    s.chars().fold(0, |d, c| match c {
        '<' => d + 1,
        '>' => d - 1,
        _ => d,
    })
}

fn parse_field(module: &str, attr: &str, decl: &str) -> Result<PbField, String> {
    let parts: Vec<&str> = attr.split(", ").collect();
    let tag = parts
        .iter()
        .find_map(|p| p.strip_prefix("tag = \""))
        .and_then(|t| t.trim_end_matches('"').parse().ok())
        .ok_or_else(|| format!("no tag in #[prost({attr})]"))?;
    let decl = decl.strip_prefix("pub ").ok_or_else(|| format!("not a pub field: {decl}"))?;
    let (rust_name, ty_text) = decl.split_once(':').ok_or_else(|| format!("no type: {decl}"))?;
    let rust_name = rust_name.trim().trim_start_matches("r#").to_string();
    let ty_text = ty_text.trim().trim_end_matches(',');
    let first = parts.first().copied().unwrap_or_default();
    let repeated = parts.contains(&"repeated");
    // `btree_map = "string, message"` has a `, ` inside its quotes, so it is read from `attr` whole.
    let ty = if let Some(kv) = attr.strip_prefix("btree_map = \"") {
        let kv = kv.split('"').next().unwrap_or_default();
        let value = kv.strip_prefix("string, ").ok_or_else(|| format!("map key is not string: {attr}"))?;
        if value == "message" {
            let (m, n) = resolve(module, last_path(ty_text))?;
            PbType::MapMessage(m, n)
        } else {
            PbType::MapScalar(value.to_string())
        }
    } else if first == "message" {
        let (m, n) = resolve(module, last_path(ty_text))?;
        PbType::Message(m, n)
    } else {
        let scalar = first.split(" = ").next().unwrap_or_default();
        match scalar {
            "string" | "bytes" | "bool" | "int32" | "int64" | "double" => PbType::Scalar(scalar.to_string()),
            other => return Err(format!("unsupported prost type {other:?} in #[prost({attr})]")),
        }
    };
    Ok(PbField { tag, rust_name, ty, repeated })
}

/// The innermost type path of `Option<Box<X>>`, `Vec<X>` or `BTreeMap<String, X>`.
fn last_path(ty: &str) -> &str {
    // rustfmt leaves a trailing comma inside wrapped generics: `Vec<X,>` once lines are joined.
    let inner = ty.trim_end_matches('>').trim_end_matches(',');
    let inner = inner.rsplit('<').next().unwrap_or(inner);
    inner.rsplit(',').next().unwrap_or(inner).trim()
}

/// Resolves a Rust type path written inside `module` to (module, name).
fn resolve(module: &str, path: &str) -> Result<(String, String), String> {
    let mut segs: Vec<&str> = module.split('/').collect();
    let mut parts: Vec<&str> = path.split("::").collect();
    let name = parts.pop().ok_or_else(|| format!("empty type path in {module}"))?;
    for p in parts {
        if p == "super" {
            segs.pop().ok_or_else(|| format!("too many `super` in {path}"))?;
        } else {
            segs.push(p);
        }
    }
    Ok((segs.join("/"), name.to_string()))
}

/// The k8s-pb version the checked-in table was generated from (its `src/` must be on disk to regenerate or check).
pub(crate) const K8S_PB_VERSION: &str = "0.9.0";

/// Finds k8s-pb's `src/`: `$K8S_PB_SRC`, else cargo's registry cache under `$CARGO_HOME` (or `~/.cargo`).
pub(crate) fn find_k8s_pb_src() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("K8S_PB_SRC") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry = home.join("registry").join("src");
    let wanted = format!("k8s-pb-{K8S_PB_VERSION}");
    for index in fs::read_dir(&registry).map_err(|e| format!("{}: {e}", registry.display()))?.flatten() {
        let dir = index.path().join(&wanted).join("src");
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    Err(format!("{wanted} not found under {}; set K8S_PB_SRC to its src/ directory", registry.display()))
}
