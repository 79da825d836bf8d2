//! Small helpers over kube-rs: classifying API errors the way controllers branch on them.

use kube::Error as KubeError;

/// The server's `Status` for an API error, if the error is one.
fn status(e: &KubeError) -> Option<&kube::core::Status> {
    match e {
        KubeError::Api(s) => Some(s),
        _ => None,
    }
}

/// 404 NotFound.
pub fn is_not_found(e: &KubeError) -> bool {
    status(e).is_some_and(|s| s.is_not_found())
}

/// 409 Conflict (a stale resourceVersion or a failed precondition), not AlreadyExists.
pub fn is_conflict(e: &KubeError) -> bool {
    status(e).is_some_and(|s| s.code == 409 && s.reason != "AlreadyExists")
}

/// 409 AlreadyExists.
pub fn is_already_exists(e: &KubeError) -> bool {
    status(e).is_some_and(|s| s.is_already_exists())
}

/// 405 MethodNotAllowed (a verb the resource does not serve).
pub fn is_method_not_allowed(e: &KubeError) -> bool {
    status(e).is_some_and(|s| s.code == 405)
}

/// A create refused because the namespace is being deleted (NamespaceLifecycle admission): nothing to retry.
pub fn is_namespace_terminating(e: &KubeError) -> bool {
    status(e).is_some_and(|s| {
        s.code == 403 && s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> KubeError {
        KubeError::Api(Status::failure("m", reason).with_code(code).boxed())
    }

    #[test]
    fn classifies_statuses() {
        assert!(is_not_found(&api(404, "NotFound")));
        assert!(is_conflict(&api(409, "Conflict")));
        assert!(!is_conflict(&api(409, "AlreadyExists")));
        assert!(is_already_exists(&api(409, "AlreadyExists")));
        assert!(is_method_not_allowed(&api(405, "MethodNotAllowed")));
        assert!(!is_namespace_terminating(&api(403, "Forbidden")));
    }
}
