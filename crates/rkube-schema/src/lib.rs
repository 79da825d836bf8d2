//! Structural OpenAPI v3 schemas of CustomResourceDefinitions: checking, pruning, defaulting, validation.
//!
//! A [`Schema`] is built from one CRD version's `schema.openAPIV3Schema` with [`Schema::from_crd_version`]
//! (which rejects non-structural schemas with upstream's causes). The API server then, for every custom
//! object, as upstream's apiextensions-apiserver does:
//! 1. [`Schema::prune`] drops unknown fields (the returned paths feed `fieldValidation=Strict|Warn`),
//! 2. [`Schema::apply_defaults`] fills in `default`s (on writes, and on reads from storage),
//! 3. [`Schema::validate`] returns the 422 causes.
//!
//! Pure logic on `serde_json::Value`; `x-kubernetes-validations` (CEL) rules are accepted but not evaluated.

mod crd;
mod defaults;
mod embedded;
mod formats;
mod listtype;
mod messages;
mod node;
mod path;
mod prune;
mod structural;
mod validate;

#[cfg(test)]
mod tests;

use rkube_apimachinery::Cause;
use serde_json::Value;

pub use messages::unknown_field_warning;
pub use path::{PathError, get_path, set_path};

use node::Node;

/// One CRD version's structural schema, checked and ready to prune, default and validate custom objects.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Node,
}

impl Schema {
    /// Parses and checks `openAPIV3Schema`; cause fields start at `openAPIV3Schema` (see
    /// [`Schema::from_crd_version_at`] to place them under `spec.versions[i].schema.openAPIV3Schema`).
    pub fn from_crd_version(openapi_v3_schema: &Value) -> Result<Schema, Vec<Cause>> {
        Self::from_crd_version_at(openapi_v3_schema, "openAPIV3Schema")
    }

    /// Parses and checks `openAPIV3Schema` as CRD validation does: the structural-schema invariants, every
    /// default valid and pruned, and the per-node rules (supported keywords and types, no uniqueItems,
    /// additionalProperties not beside properties, list/map types). `field_path` is where the schema sits
    /// in the CRD, e.g. `spec.versions[0].schema.openAPIV3Schema`.
    pub fn from_crd_version_at(openapi_v3_schema: &Value, field_path: &str) -> Result<Schema, Vec<Cause>> {
        let mut parse_errs = Vec::new();
        let root = Node::parse(openapi_v3_schema, field_path, &mut parse_errs);
        if !parse_errs.is_empty() {
            return Err(parse_errs);
        }
        let mut causes = structural::validate(&root, field_path);
        // Upstream checks defaults only on a structural schema: pruning and validating them needs one.
        if causes.is_empty() {
            causes.extend(defaults::validate_defaults(&root, field_path));
        }
        causes.extend(crd::check(&root, field_path));
        if causes.is_empty() { Ok(Schema { root }) } else { Err(causes) }
    }

    /// Removes fields the schema does not specify, keeping `apiVersion`, `kind` and `metadata` at the root
    /// and in embedded resources, and everything under `x-kubernetes-preserve-unknown-fields`. Returns the
    /// removed fields' paths, sorted (`spec.foo`, `spec.items[0].bar`); see [`unknown_field_warning`].
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune_value(obj, &self.root, true)
    }

    /// Applies `default`s to missing fields, recursively (inside defaulted objects, array items and map
    /// values too). Nulls where the schema is not nullable are first replaced by the default, or dropped
    /// when there is none, as upstream does before defaulting.
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::prune_nulls(obj, Some(&self.root));
        defaults::apply(obj, Some(&self.root));
    }

    /// Validates a whole custom object: the OpenAPI value validations (type, format, bounds, lengths,
    /// pattern, enum, required, item and property counts, allOf/anyOf/oneOf/not), then the TypeMeta of
    /// embedded resources, then `x-kubernetes-list-type` set/map uniqueness. Cause fields are paths like
    /// `spec.items[2].name`. The root's own TypeMeta and ObjectMeta are the caller's to validate.
    pub fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = messages::Errors::default();
        validate::check(&self.root, obj, "", "", &mut errs);
        let mut out = errs.0;
        embedded::validate(&self.root, obj, "", &mut out);
        if let Value::Object(m) = obj {
            listtype::validate(&self.root, m, "", &mut out);
        }
        out
    }

    /// Whether any node carries `x-kubernetes-validations` (CEL) rules, which rkube does not evaluate;
    /// the API server may warn about them.
    pub fn has_validation_rules(&self) -> bool {
        let mut found = false;
        self.root.walk(&mut |n| found |= n.validation_rules > 0);
        found
    }
}
