//! One OpenAPI v3 schema node as a CustomResourceDefinition writes it (upstream's JSONSchemaProps), parsed from JSON.

use std::collections::BTreeMap;

use regex::Regex;
use rkube_apimachinery::Cause;
use serde_json::{Map, Value};

use crate::messages;
use crate::path::{child, index, key};

/// `additionalProperties`: a boolean or a schema for every value of a map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Additional {
    /// `additionalProperties: true|false`.
    Allows(bool),
    /// `additionalProperties: {...}`.
    Schema(Box<Node>),
}

impl Additional {
    /// The schema the values follow; `None` for the boolean form (upstream's nil structural schema).
    pub(crate) fn schema(&self) -> Option<&Node> {
        match self {
            Additional::Schema(s) => Some(s),
            Additional::Allows(_) => None,
        }
    }
}

/// A `pattern` with its compiled form; compared by source so that nodes stay comparable.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) source: String,
    /// The compile error as one line, if the pattern is not a valid regular expression.
    pub(crate) regex: Result<Regex, String>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Every keyword of JSONSchemaProps that rkube reads; absent keywords are empty/`None`/`false` so that a
/// node can be compared with `Node::default()` the way upstream compares structs with their zero value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Node {
    pub(crate) ty: String,
    pub(crate) format: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) has_example: bool,
    pub(crate) has_external_docs: bool,
    pub(crate) nullable: bool,
    pub(crate) default: Option<Value>,
    pub(crate) properties: BTreeMap<String, Node>,
    pub(crate) additional: Option<Additional>,
    pub(crate) items: Option<Box<Node>>,
    /// `items` written as an array of schemas (JSON Schema tuples), which CRDs reject.
    pub(crate) items_is_array: bool,
    pub(crate) required: Vec<String>,
    pub(crate) enumeration: Option<Vec<Value>>,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) max_length: Option<i64>,
    pub(crate) min_length: Option<i64>,
    pub(crate) max_items: Option<i64>,
    pub(crate) min_items: Option<i64>,
    pub(crate) max_properties: Option<i64>,
    pub(crate) min_properties: Option<i64>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) unique_items: bool,
    pub(crate) all_of: Vec<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) not: Option<Box<Node>>,
    pub(crate) preserve_unknown: Option<bool>,
    pub(crate) embedded: bool,
    pub(crate) int_or_string: bool,
    pub(crate) list_type: Option<String>,
    pub(crate) list_map_keys: Vec<String>,
    pub(crate) map_type: Option<String>,
    /// How many `x-kubernetes-validations` (CEL) rules the node carries; rkube does not evaluate them.
    pub(crate) validation_rules: usize,
    /// Keywords present that CRDs do not support (`$ref`, `id`, `definitions`, ...).
    pub(crate) unsupported: Vec<&'static str>,
}

/// Keywords upstream's CRD validation forbids, with the name used in the cause path.
const UNSUPPORTED: [&str; 6] = ["id", "$ref", "patternProperties", "dependencies", "additionalItems", "definitions"];

impl Node {
    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub(crate) fn preserves_unknown(&self) -> bool {
        self.preserve_unknown == Some(true)
    }

    /// The JSON types a value may have: int-or-string means both, as upstream converts it.
    pub(crate) fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else if self.ty.is_empty() {
            Vec::new()
        } else {
            vec![self.ty.as_str()]
        }
    }

    /// Parses `v` at schema path `p`, recording malformed keywords as causes.
    pub(crate) fn parse(v: &Value, p: &str, errs: &mut Vec<Cause>) -> Node {
        let Some(m) = v.as_object() else {
            errs.push(messages::invalid(p, v, "must be an object"));
            return Node::default();
        };
        let mut r = Reader { m, p, errs };
        let mut n = Node {
            ty: r.string("type").unwrap_or_default(),
            format: r.string("format").unwrap_or_default(),
            title: r.string("title").unwrap_or_default(),
            description: r.string("description").unwrap_or_default(),
            has_example: m.contains_key("example"),
            has_external_docs: m.contains_key("externalDocs"),
            nullable: r.boolean("nullable").unwrap_or(false),
            // A JSON null default is no default, as upstream's decoding leaves it.
            default: m.get("default").filter(|d| !d.is_null()).cloned(),
            required: r.strings("required"),
            enumeration: r.array("enum").map(|a| a.to_vec()),
            maximum: r.number("maximum"),
            exclusive_maximum: r.boolean("exclusiveMaximum").unwrap_or(false),
            minimum: r.number("minimum"),
            exclusive_minimum: r.boolean("exclusiveMinimum").unwrap_or(false),
            multiple_of: r.number("multipleOf"),
            max_length: r.integer("maxLength"),
            min_length: r.integer("minLength"),
            max_items: r.integer("maxItems"),
            min_items: r.integer("minItems"),
            max_properties: r.integer("maxProperties"),
            min_properties: r.integer("minProperties"),
            pattern: r.string("pattern").map(|source| {
                let regex = Regex::new(&source).map_err(|e| one_line(&e.to_string()));
                Pattern { source, regex }
            }),
            unique_items: r.boolean("uniqueItems").unwrap_or(false),
            preserve_unknown: r.boolean("x-kubernetes-preserve-unknown-fields"),
            embedded: r.boolean("x-kubernetes-embedded-resource").unwrap_or(false),
            int_or_string: r.boolean("x-kubernetes-int-or-string").unwrap_or(false),
            list_type: r.string("x-kubernetes-list-type"),
            list_map_keys: r.strings("x-kubernetes-list-map-keys"),
            map_type: r.string("x-kubernetes-map-type"),
            validation_rules: r.array("x-kubernetes-validations").map_or(0, <[Value]>::len),
            unsupported: UNSUPPORTED.iter().copied().filter(|k| m.contains_key(*k)).collect(),
            ..Node::default()
        };
        if let Some(props) = r.object("properties") {
            let pp = child(p, "properties");
            for (k, sub) in props {
                let sub = Node::parse(sub, &key(&pp, k), r.errs);
                n.properties.insert(k.clone(), sub);
            }
        }
        match m.get("additionalProperties") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => n.additional = Some(Additional::Allows(*b)),
            Some(sub @ Value::Object(_)) => {
                let sub = Node::parse(sub, &child(p, "additionalProperties"), r.errs);
                n.additional = Some(Additional::Schema(Box::new(sub)));
            }
            Some(other) => r.errs.push(messages::invalid(
                &child(p, "additionalProperties"),
                other,
                "must be a boolean or a schema",
            )),
        }
        match m.get("items") {
            None | Some(Value::Null) => {}
            Some(sub @ Value::Object(_)) => n.items = Some(Box::new(Node::parse(sub, &child(p, "items"), r.errs))),
            Some(Value::Array(_)) => n.items_is_array = true,
            Some(other) => r.errs.push(messages::invalid(&child(p, "items"), other, "must be a schema")),
        }
        n.all_of = r.schemas("allOf");
        n.any_of = r.schemas("anyOf");
        n.one_of = r.schemas("oneOf");
        if let Some(sub) = m.get("not").filter(|v| !v.is_null()) {
            n.not = Some(Box::new(Node::parse(sub, &child(p, "not"), r.errs)));
        }
        n
    }

    /// Calls `f` on this node and every node below it (properties, items, additionalProperties, junctors).
    pub(crate) fn walk(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        for p in self.properties.values() {
            p.walk(f);
        }
        if let Some(Additional::Schema(s)) = &self.additional {
            s.walk(f);
        }
        if let Some(i) = &self.items {
            i.walk(f);
        }
        for s in self.all_of.iter().chain(&self.any_of).chain(&self.one_of) {
            s.walk(f);
        }
        if let Some(n) = &self.not {
            n.walk(f);
        }
    }
}

/// Regex errors are multi-line pictures; causes are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Typed access to one schema object's keywords, recording wrongly typed ones.
struct Reader<'a> {
    m: &'a Map<String, Value>,
    p: &'a str,
    errs: &'a mut Vec<Cause>,
}

impl<'a> Reader<'a> {
    /// The keyword's value unless absent or null.
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.m.get(k).filter(|v| !v.is_null())
    }

    fn bad(&mut self, k: &str, v: &Value, what: &str) {
        self.errs.push(messages::invalid(&child(self.p, k), v, what));
    }

    fn string(&mut self, k: &str) -> Option<String> {
        let v = self.get(k)?;
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.bad(k, v, "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, k: &str) -> Option<bool> {
        let v = self.get(k)?;
        let b = v.as_bool();
        if b.is_none() {
            self.bad(k, v, "must be a boolean");
        }
        b
    }

    fn number(&mut self, k: &str) -> Option<f64> {
        let v = self.get(k)?;
        let f = v.as_f64();
        if f.is_none() {
            self.bad(k, v, "must be a number");
        }
        f
    }

    fn integer(&mut self, k: &str) -> Option<i64> {
        let v = self.get(k)?;
        let i = v.as_i64();
        if i.is_none() {
            self.bad(k, v, "must be an integer");
        }
        i
    }

    fn array(&mut self, k: &str) -> Option<&'a [Value]> {
        let v = self.get(k)?;
        match v.as_array() {
            Some(a) => Some(a.as_slice()),
            None => {
                self.bad(k, v, "must be an array");
                None
            }
        }
    }

    fn object(&mut self, k: &str) -> Option<&'a Map<String, Value>> {
        let v = self.get(k)?;
        let o = v.as_object();
        if o.is_none() {
            self.bad(k, v, "must be an object");
        }
        o
    }

    fn strings(&mut self, k: &str) -> Vec<String> {
        let Some(a) = self.array(k) else { return Vec::new() };
        let mut out = Vec::with_capacity(a.len());
        for (i, v) in a.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => self.errs.push(messages::invalid(&index(&child(self.p, k), i), v, "must be a string")),
            }
        }
        out
    }

    fn schemas(&mut self, k: &str) -> Vec<Node> {
        let Some(a) = self.array(k) else { return Vec::new() };
        let base = child(self.p, k);
        a.iter().enumerate().map(|(i, v)| Node::parse(v, &index(&base, i), self.errs)).collect()
    }
}
