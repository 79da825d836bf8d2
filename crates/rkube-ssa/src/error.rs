//! Why an apply failed, and the API error each reason becomes.

use rkube_apimachinery::ApiError;

use crate::conflicts::Conflicts;

/// A failed server-side apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the apply would change (409).
    #[error("{}", .0.message())]
    Conflict(Conflicts),
    /// The applied object is not acceptable: wrong kind or version, or it carries managedFields (400).
    #[error("{0}")]
    BadRequest(String),
    /// The applied object does not fit the schema (duplicate or missing list keys), or the live object's
    /// managedFields do not decode. Upstream answers these with a 500 without reason; the message is its text.
    #[error("{0}")]
    Internal(String),
}

impl ApplyError {
    /// The error as upstream returns it.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ApplyError::Conflict(c) => c.to_api_error(),
            ApplyError::BadRequest(m) => ApiError::bad_request(m.clone()),
            // Upstream's generic-error status: code 500, reason unset, the error text as message.
            ApplyError::Internal(m) => ApiError { code: 500, reason: "", message: m.clone(), details: None },
        }
    }
}
