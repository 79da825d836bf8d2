//! Who writes, in which version, when, and which fields the kind's strategy resets: the context of one
//! create, update or apply.

use crate::fieldset::FieldSet;
use crate::path::field_path;

/// The context of one write.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The field manager: `fieldManager`, or for non-apply writes without one the user agent's prefix
    /// (see [`crate::manager_or_user_agent`]). Empty records as `unknown` on updates.
    pub manager: &'a str,
    /// The API version the request was made in (`apps/v1`); managed fields are recorded in it.
    pub api_version: &'a str,
    /// The kind served at the endpoint (`Deployment`); an applied object must match it.
    pub kind: &'a str,
    /// The subresource written (`status`, `scale`), or empty for the main resource.
    pub subresource: &'a str,
    /// The time to record, RFC 3339 with seconds (`2024-05-01T10:00:00Z`), as `metav1.Time` serializes.
    pub now: &'a str,
    /// Fields the kind's strategy resets on this endpoint (upstream `GetResetFields`): nobody takes
    /// ownership of them here. See [`reset_fields_for`].
    pub reset_fields: Option<&'a FieldSet>,
}

impl<'a> Request<'a> {
    /// A write to the main resource without reset fields.
    pub fn new(manager: &'a str, api_version: &'a str, kind: &'a str, now: &'a str) -> Self {
        Request { manager, api_version, kind, subresource: "", now, reset_fields: None }
    }

    /// The same request on a subresource.
    pub fn with_subresource(self, subresource: &'a str) -> Self {
        Request { subresource, ..self }
    }

    /// The same request with the fields the strategy resets.
    pub fn with_reset_fields(self, reset_fields: &'a FieldSet) -> Self {
        Request { reset_fields: Some(reset_fields), ..self }
    }
}

/// The reset fields of rkube's generic strategies: the main resource of a kind with a status subresource
/// resets `status`; the status subresource keeps everything but `status` (so `spec` and `metadata`).
pub fn reset_fields_for(subresource: &str, has_status: bool) -> FieldSet {
    match subresource {
        "" if has_status => FieldSet::from_paths([field_path(&["status"])]),
        "status" => FieldSet::from_paths([field_path(&["spec"]), field_path(&["metadata"])]),
        _ => FieldSet::new(),
    }
}
