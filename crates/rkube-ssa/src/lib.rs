//! Server-side apply and `metadata.managedFields` with upstream's semantics (sigs.k8s.io/structured-merge-diff
//! and k8s.io/apimachinery's managedfields), as pure functions on `serde_json::Value`.
//!
//! - [`update`] recomputes managedFields for every create, update and non-apply patch: the writer's
//!   `operation: Update` entry owns what it added or changed, and other managers lose those fields.
//!   [`update_owned`] does the same on an object the caller hands over, without copying it.
//! - [`apply`] handles `PATCH` with `application/apply-patch+yaml`: merge per the [`Schema`], prune fields
//!   the applier dropped, fail with [`Conflicts`] (409) unless forced, record the `operation: Apply` entry.
//! - [`fieldset`] and [`FieldSet`]'s FieldsV1 (de)serialization give the owned-field sets in upstream's format.
//! - [`BuiltinSchema`] knows the built-in kinds' list keys and atomic types without OpenAPI.
//!
//! The crate does no IO and knows nothing of storage: the API server calls it with the live and new objects.

mod apply;
mod builtin;
mod compare;
mod conflicts;
mod error;
mod fieldset;
mod fieldsv1;
mod gojson;
mod helpers;
mod last_applied;
mod managed;
mod merge;
mod path;
mod remove;
mod request;
mod rfc3339;
mod schema;
mod skeleton;
mod typed;
mod update;
mod value;
mod view;

#[cfg(test)]
mod tests;

pub use apply::apply;
pub use builtin::BuiltinSchema;
pub use conflicts::{Conflict, Conflicts};
pub use error::ApplyError;
pub use fieldset::FieldSet;
pub use fieldsv1::FieldsV1Error;
pub use helpers::{
    FIELD_MANAGER_MAX_LENGTH, manager_or_user_agent, requests_managed_fields_reset, strip_managed_fields,
    strip_managed_fields_if_requested, validate_field_manager, validate_managed_fields, validate_patch_options,
    validate_write_options,
};
pub use managed::{ManagedFieldsEntry, Operation, managed_fields};
pub use path::{FieldPath, PathElement, field_path, path_string};
pub use request::{Request, reset_fields_for};
pub use schema::{DeducedSchema, ListType, MapType, Schema};
pub use typed::fieldset;
pub use update::{update, update_owned};
