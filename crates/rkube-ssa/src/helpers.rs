//! What the API server checks and trims around managedFields: the `fieldManager` parameter (required for
//! apply, at most 128 printable bytes), the manager derived from the user agent, ObjectMeta's validation of
//! `managedFields`, and stripping them.

use rkube_apimachinery::{ApiError, Cause};
use serde_json::{Value, json};

use crate::gojson::is_printable;
use crate::managed::{is_reset, set_list};

/// The longest field manager name upstream accepts, in bytes.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The longest subresource name a managedFields entry may carry.
const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// The manager of a non-apply write: `fieldManager` if given, else the user agent up to its first `/`
/// (`kubectl/v1.30.0 (linux/amd64)` → `kubectl`), without unprintable characters, cut at 128 bytes.
pub fn manager_or_user_agent(field_manager: &str, user_agent: &str) -> String {
    if !field_manager.is_empty() {
        return field_manager.to_owned();
    }
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| is_printable(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: may not be more than {max} bytes"),
        field: field.into(),
    }
}

/// Upstream's `ValidateFieldManager`: at most 128 bytes, printable characters only.
pub fn validate_field_manager(field_manager: &str, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if field_manager.len() > FIELD_MANAGER_MAX_LENGTH {
        causes.push(too_long(field, FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in field_manager.char_indices() {
        if !is_printable(c) {
            let detail = format!("invalid character U+{:04X} (at position {i})", u32::from(c));
            causes.push(Cause::invalid(field, &json!(field_manager), &detail));
        }
    }
    causes
}

/// Upstream's `ValidatePatchOptions`: an apply patch requires `fieldManager`
/// (`PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`, 422);
/// `force` is only for apply patches.
pub fn validate_patch_options(is_apply: bool, field_manager: &str, force: Option<bool>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if is_apply {
        if field_manager.is_empty() {
            causes.push(Cause::required("fieldManager", "is required for apply patch"));
        }
    } else if force.is_some() {
        causes.push(Cause::forbidden("force", "may not be specified for non-apply patch"));
    }
    causes.extend(validate_field_manager(field_manager, "fieldManager"));
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", causes)) }
}

/// The `fieldManager` check of creates and updates (`options_kind` is `CreateOptions` or `UpdateOptions`).
pub fn validate_write_options(options_kind: &str, field_manager: &str) -> Result<(), ApiError> {
    let causes = validate_field_manager(field_manager, "fieldManager");
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("meta.k8s.io", options_kind, "", causes)) }
}

/// ObjectMeta's validation of `metadata.managedFields` (upstream `ValidateManagedFields`): each entry's
/// operation is Apply or Update, fieldsType is FieldsV1 if set, the manager is a valid field manager and
/// the subresource at most 256 bytes.
pub fn validate_managed_fields(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(entries) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return causes;
    };
    let text = |e: &Value, f: &str| e.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
    for (i, e) in entries.iter().enumerate() {
        let at = |f: &str| format!("metadata.managedFields[{i}].{f}");
        match text(e, "operation").as_str() {
            "" => causes.push(Cause::required(&at("operation"), "must not be empty")),
            "Apply" | "Update" => {}
            other => causes.push(Cause::not_supported(&at("operation"), &json!(other), &["Apply", "Update"])),
        }
        let fields_type = text(e, "fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            causes.push(Cause::invalid(&at("fieldsType"), &json!(fields_type), "must be `FieldsV1`"));
        }
        causes.extend(validate_field_manager(&text(e, "manager"), &at("manager")));
        if text(e, "subresource").len() > MAX_SUBRESOURCE_NAME_LENGTH {
            causes.push(too_long(&at("subresource"), MAX_SUBRESOURCE_NAME_LENGTH));
        }
    }
    causes
}

/// Whether a create or update body asks to clear managedFields (`[]` or `[{}]`), which upstream honours.
pub fn requests_managed_fields_reset(obj: &Value) -> bool {
    is_reset(obj.pointer("/metadata/managedFields"))
}

/// Removes `metadata.managedFields` (e.g. to retry a write that is too large without them, as upstream
/// does for non-apply patches).
pub fn strip_managed_fields(obj: &mut Value) {
    set_list(obj, None);
}

/// Removes `metadata.managedFields` when `requested` (a caller that does not want them shown or stored).
pub fn strip_managed_fields_if_requested(obj: &mut Value, requested: bool) {
    if requested {
        strip_managed_fields(obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_requires_field_manager() {
        let err = validate_patch_options(true, "", None).expect_err("required");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert!(validate_patch_options(true, "kubectl", Some(true)).is_ok());
        let forced = validate_patch_options(false, "", Some(false)).expect_err("forbidden");
        assert_eq!(
            forced.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
        );
        let long = "x".repeat(129);
        let err = validate_write_options("CreateOptions", &long).expect_err("too long");
        assert_eq!(
            err.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
        );
    }

    #[test]
    fn manager_from_user_agent() {
        assert_eq!(manager_or_user_agent("", "kubectl/v1.30.0 (linux/amd64) kubernetes/abc"), "kubectl");
        assert_eq!(manager_or_user_agent("mine", "kubectl/v1"), "mine");
        assert_eq!(manager_or_user_agent("", &"a".repeat(200)).len(), 128);
    }

    #[test]
    fn managed_fields_validation() {
        let obj = json!({"metadata": {"managedFields": [{"manager": "m\u{1}", "operation": "Patch", "fieldsType": "FieldsV2"}, {}]}});
        let messages: Vec<String> =
            validate_managed_fields(&obj).into_iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        assert_eq!(
            messages,
            vec![
                "metadata.managedFields[0].operation: Unsupported value: \"Patch\": supported values: \"Apply\", \"Update\"",
                "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[0].manager: Invalid value: \"m\\u{1}\": invalid character U+0001 (at position 1)",
                "metadata.managedFields[1].operation: Required value: must not be empty",
            ]
        );
        let mut o = obj.clone();
        strip_managed_fields_if_requested(&mut o, true);
        assert_eq!(o, json!({"metadata": {}}));
    }
}
