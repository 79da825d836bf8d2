//! Writes `src/table_gen.rs`, the message table the decoder walks, from k8s-pb's source and upstream's Go types.
//!
//! Why a checked-in table instead of a build script: the inputs are k8s-pb's 2.9 MB of Rust source
//! (for tags and wire types) and upstream's Go API types (for JSON names, `omitempty`, pointers and
//! `,inline`, which no Rust crate records). Go sources cannot be fetched during a build, and parsing
//! at build time would cost every cold CI build; the table changes only when k8s-pb is bumped.
//! `src/table_check.rs` checks the table against k8s-pb's source on every test run.
//!
//! To regenerate (after bumping k8s-pb, and `K8S_PB_VERSION` with it), check out the matching
//! Kubernetes release tag (`kubernetes-1.35.0` for k8s-pb 0.9.0) of kubernetes/api, apimachinery,
//! apiextensions-apiserver, kube-aggregator and metrics side by side under one directory
//! (`git -C <clone of kubernetes/api> archive kubernetes-1.35.0 | tar -x -C /tmp/k8s-go/api`, and so
//! on; the directory names are the repository names), then:
//!
//! ```text
//! cargo run -p rkube-protobuf --example gen_table -- --go-root /tmp/k8s-go [--pb-src DIR] [--out FILE]
//! ```

mod go_source;
mod pb_source;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use go_source::{GoPackage, read_package};
use pb_source::{PbMessage, PbType, find_k8s_pb_src, read_k8s_pb};

/// The Kubernetes release whose Go types the JSON facts come from; k8s-pb 0.9.0 was built from its protos.
const KUBERNETES_VERSION: &str = "1.35.0";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_table: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut go_root = None;
    let mut pb_src = None;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src").join("table_gen.rs");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--go-root" => go_root = Some(PathBuf::from(v)),
            "--pb-src" => pb_src = Some(PathBuf::from(v)),
            "--out" => out = PathBuf::from(v),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let go_root = go_root.ok_or("--go-root is required (see the file's doc comment)")?;
    let pb_src = match pb_src {
        Some(p) => p,
        None => find_k8s_pb_src()?,
    };
    let messages = read_k8s_pb(&pb_src)?;
    let text = generate(&messages, &go_root)?;
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("gen_table: wrote {} messages to {}", messages.len(), out.display());
    Ok(())
}

/// Maps a k8s-pb module path to its Go package directory under the go root.
fn go_dir(go_root: &Path, module: &str) -> PathBuf {
    let (repo, rest) = module.split_once('/').unwrap_or((module, ""));
    go_root.join(repo.replace('_', "-")).join(rest)
}

/// Messages whose Go types have their own JSON encoding, by proto full name.
fn special_of(full: &str, go_slice: bool) -> &'static str {
    const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
    const EXT1: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";
    const EXT1B1: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.";
    let ext = full.strip_prefix(EXT1).or_else(|| full.strip_prefix(EXT1B1));
    match (full, full.strip_prefix(META), ext) {
        (_, Some("Time"), _) => "Time",
        (_, Some("MicroTime"), _) => "MicroTime",
        (_, Some("Duration"), _) => "Duration",
        (_, Some("FieldsV1"), _) => "RawJson",
        (_, Some("GroupVersion"), _) => "GroupVersion",
        (
            "k8s.io.apimachinery.pkg.api.resource.Quantity" | "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
            ..,
        ) => "Quantity",
        ("k8s.io.apimachinery.pkg.util.intstr.IntOrString", ..) => "IntOrString",
        ("k8s.io.apimachinery.pkg.runtime.RawExtension", ..) => "RawExtension",
        ("k8s.io.apimachinery.pkg.runtime.Unknown", ..) => "Unknown",
        (_, _, Some("JSON")) => "RawJson",
        (_, _, Some("JSONSchemaPropsOrArray")) => "SchemaOrArray",
        (_, _, Some("JSONSchemaPropsOrBool")) => "SchemaOrBool",
        (_, _, Some("JSONSchemaPropsOrStringArray")) => "SchemaOrStringArray",
        _ if go_slice => "Items",
        _ => "None",
    }
}

/// The Go spelling of a k8s-pb struct name (k8s-pb turns `HostIP` into `HostIp`).
fn go_name(pkg: &GoPackage, rust_name: &str) -> Option<String> {
    let lower = rust_name.to_ascii_lowercase();
    let mut names = pkg.structs.keys().chain(pkg.slices.iter()).chain(pkg.foreign.keys());
    names.find(|n| n.to_ascii_lowercase() == lower).cloned()
}

/// Resolves `type X v1.Y` to Y's fields in its own package, reading that package if needed.
fn foreign_fields(
    go_root: &Path,
    cache: &mut BTreeMap<String, GoPackage>,
    pkg_module: &str,
    go: &str,
) -> Result<Option<BTreeMap<u32, go_source::GoField>>, String> {
    let Some((path, there)) = cache[pkg_module].foreign.get(go).cloned() else { return Ok(None) };
    let rel = path.strip_prefix("k8s.io/").ok_or_else(|| format!("{go}: import {path} is not k8s.io"))?;
    let dir = go_root.join(rel);
    let key = format!("go:{rel}");
    if !cache.contains_key(&key) {
        cache.insert(key.clone(), read_package(&dir)?);
    }
    Ok(cache[&key].structs.get(&there).cloned())
}

fn generate(messages: &BTreeMap<(String, String), PbMessage>, go_root: &Path) -> Result<String, String> {
    let mut packages: BTreeMap<String, GoPackage> = BTreeMap::new();
    for (module, _) in messages.keys() {
        if !packages.contains_key(module) {
            packages.insert(module.clone(), read_package(&go_dir(go_root, module))?);
        }
    }
    // Proto full names, and an index per message in full-name order.
    let mut full_names = BTreeMap::new();
    for (key, msg) in messages {
        let pkg = &packages[&msg.module];
        let go =
            go_name(pkg, &msg.rust_name).ok_or_else(|| format!("{}::{} has no Go type", msg.module, msg.rust_name))?;
        full_names.insert(key.clone(), format!("k8s.io.{}.{go}", msg.module.replace('/', ".")));
    }
    let mut order: Vec<_> = full_names.iter().map(|(k, v)| (v.clone(), k.clone())).collect();
    order.sort();
    let index: BTreeMap<_, _> = order.iter().enumerate().map(|(i, (_, k))| (k.clone(), i)).collect();
    let idx = |m: &String, n: &String| {
        index.get(&(m.clone(), n.clone())).copied().ok_or_else(|| format!("unknown message {m}::{n}"))
    };

    let mut body = String::new();
    let mut errors = Vec::new();
    for (full, key) in &order {
        let msg = &messages[key];
        let go = full.rsplit('.').next().unwrap_or_default();
        let special = special_of(full, packages[&msg.module].slices.contains(go));
        let foreign = foreign_fields(go_root, &mut packages, &msg.module, go)?;
        let go_fields = foreign.as_ref().or_else(|| packages[&msg.module].structs.get(go));
        let mut fields = msg.fields.clone();
        fields.sort_by_key(|f| f.tag);
        let _ = writeln!(body, "    M {{ name: {full:?}, special: S::{special}, fields: &[");
        for f in &fields {
            let ty = match &f.ty {
                PbType::Scalar(s) => scalar(s).to_string(),
                PbType::Message(m, n) => format!("Msg({})", idx(m, n)?),
                PbType::MapScalar(s) => format!("Map{}", scalar(s)),
                PbType::MapMessage(m, n) => format!("MapMsg({})", idx(m, n)?),
            };
            let card = if f.repeated { "Rep" } else { "One" };
            // Named slices (`Verbs`) are proto messages but Go slices: nil unless set.
            let named_slice = match &f.ty {
                PbType::Message(m, n) => packages[m].slices.iter().any(|s| s.eq_ignore_ascii_case(n)),
                _ => false,
            };
            let (json, flags) = match go_fields.and_then(|g| g.get(&f.tag)) {
                Some(g) if g.skip => (String::new(), "SKIP".to_string()),
                Some(g) if g.inline => (String::new(), "INLINE | VALUE".to_string()),
                Some(g) if !g.json.is_empty() => {
                    let mut flags = Vec::new();
                    if g.omitempty && !g.pointer {
                        flags.push("OMIT_EMPTY");
                    }
                    // Named map types (`ResourceList`) do not start with `map[`: the proto shape says it.
                    let scalar_or_message = !f.repeated && matches!(f.ty, PbType::Scalar(_) | PbType::Message(..));
                    if !g.pointer && !g.nillable && !named_slice && scalar_or_message {
                        flags.push("VALUE");
                    }
                    (g.json.clone(), if flags.is_empty() { "0".to_string() } else { flags.join(" | ") })
                }
                // Types with their own JSON encoding are decoded by hand; their fields keep the Rust name.
                _ if special != "None" => (f.rust_name.clone(), "0".to_string()),
                _ => {
                    errors.push(format!("{full}: field {} ({}) has no Go JSON tag", f.tag, f.rust_name));
                    continue;
                }
            };
            let _ = writeln!(body, "        F::new({}, {json:?}, {ty}, {card}, {flags}),", f.tag);
        }
        body.push_str("    ]},\n");
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }

    // Kinds: structs embedding TypeMeta in a package with a +groupName.
    let mut kinds = Vec::new();
    for (key, msg) in messages {
        let pkg = &packages[&msg.module];
        let (Some(group), full) = (&pkg.group, &full_names[key]) else { continue };
        let go = full.rsplit('.').next().unwrap_or_default();
        if pkg.kinds.contains(go) {
            let version = msg.module.rsplit('/').next().unwrap_or_default();
            let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
            kinds.push((api_version, go.to_string(), idx(&msg.module, &msg.rust_name)?));
        }
    }
    kinds.sort();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! Generated by `examples/gen_table` from k8s-pb {} and Kubernetes {KUBERNETES_VERSION}'s Go types: do not edit.",
        pb_source::K8S_PB_VERSION
    );
    out.push_str("\nuse crate::table::{Card::*, FieldDef as F, MessageDef as M, Special as S, Ty::*, INLINE, OMIT_EMPTY, SKIP, VALUE};\n\n");
    let _ = writeln!(out, "/// The k8s-pb release the table was generated from.");
    let _ = writeln!(out, "pub(crate) const K8S_PB_VERSION: &str = {:?};\n", pb_source::K8S_PB_VERSION);
    let _ = writeln!(out, "/// Every message, sorted by proto full name; `Msg(i)` refers to `MESSAGES[i]`.");
    let _ = writeln!(out, "pub(crate) static MESSAGES: [M; {}] = [", order.len());
    out.push_str(&body);
    out.push_str("];\n\n");
    let _ = writeln!(out, "/// (apiVersion, kind, message index), sorted for binary search.");
    let _ = writeln!(out, "pub(crate) static KINDS: [(&str, &str, u16); {}] = [", kinds.len());
    for (v, k, i) in kinds {
        let _ = writeln!(out, "    ({v:?}, {k:?}, {i}),");
    }
    out.push_str("];\n");
    Ok(out)
}

fn scalar(s: &str) -> &'static str {
    match s {
        "string" => "Str",
        "bytes" => "Bytes",
        "bool" => "Bool",
        "int32" => "I32",
        "int64" => "I64",
        _ => "F64",
    }
}
