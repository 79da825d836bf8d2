//! Apply conflicts: which manager owns which field the applier would change, rendered as upstream's
//! 409 `Status` (`Apply failed with 1 conflict: conflict with "mgr" using apps/v1: .spec.replicas`).

use std::collections::BTreeMap;

use rkube_apimachinery::{ApiError, Cause};
use serde_json::json;

use crate::gojson::go_quote;
use crate::managed::{Operation, identifier};
use crate::path::{FieldPath, path_string};

/// One conflict: a field the applier would change, and the manager that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager's name.
    pub manager: String,
    /// How the owner set the field.
    pub operation: Operation,
    /// The owner's API version (shown for Update owners).
    pub api_version: String,
    /// The owner's subresource, or empty.
    pub subresource: String,
    /// The field.
    pub path: FieldPath,
}

impl Conflict {
    /// The field as upstream prints it: `.spec.template.spec.containers[name="nginx"].image`.
    pub fn field(&self) -> String {
        path_string(&self.path)
    }

    /// The owner as upstream prints it: `"mgr"`, `"mgr" using apps/v1`, `"mgr" with subresource "status" using v1`.
    pub fn owner(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {}", go_quote(&self.subresource));
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    /// The owner's identifier; upstream groups and sorts multi-conflict messages by it.
    fn key(&self) -> String {
        identifier(&self.manager, self.operation, &self.api_version, &self.subresource)
    }
}

/// The conflicts of a failed apply, ordered by owner identifier, then as each owner's fields iterate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    /// The number of conflicts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Upstream's message: one conflict on one line; several grouped per owner, owners sorted.
    pub fn message(&self) -> String {
        if let [c] = self.0.as_slice() {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", c.owner(), c.field());
        }
        let mut by_owner: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for c in &self.0 {
            by_owner.entry(c.key()).or_insert_with(|| (c.owner(), Vec::new())).1.push(c.field());
        }
        let mut lines = Vec::new();
        for (owner, fields) in by_owner.into_values() {
            lines.push(format!("conflicts with {owner}:"));
            lines.extend(fields.into_iter().map(|f| format!("- {f}")));
        }
        format!("Apply failed with {} conflicts: {}", self.0.len(), lines.join("\n"))
    }

    /// The `details.causes` entries: reason `FieldManagerConflict`, `conflict with "mgr" using v1`, the field.
    pub fn causes(&self) -> Vec<Cause> {
        self.0
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", c.owner()),
                field: c.field(),
            })
            .collect()
    }

    /// The 409 error upstream answers with (reason Conflict, the causes in `details`, no kind or name).
    pub fn to_api_error(&self) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: self.message(),
            details: Some(json!({ "causes": self.causes() })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::field_path;

    fn c(manager: &str, op: Operation, path: &[&str]) -> Conflict {
        Conflict {
            manager: manager.into(),
            operation: op,
            api_version: "apps/v1".into(),
            subresource: String::new(),
            path: field_path(path),
        }
    }

    #[test]
    fn one_conflict() {
        let cs = Conflicts(vec![c("kubectl-client-side-apply", Operation::Update, &["spec", "replicas"])]);
        assert_eq!(
            cs.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let status = cs.to_api_error().to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["reason"], "Conflict");
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1", "field": ".spec.replicas"})
        );
    }

    #[test]
    fn several_conflicts_group_by_sorted_owner() {
        let cs = Conflicts(vec![
            c("zeta", Operation::Apply, &["spec", "paused"]),
            c("alpha", Operation::Update, &["spec", "replicas"]),
            c("alpha", Operation::Update, &["spec", "minReadySeconds"]),
        ]);
        assert_eq!(
            cs.message(),
            "Apply failed with 3 conflicts: conflicts with \"alpha\" using apps/v1:\n- .spec.replicas\n- .spec.minReadySeconds\nconflicts with \"zeta\":\n- .spec.paused"
        );
        let sub = Conflict { subresource: "status".into(), ..c("kcm", Operation::Update, &["status", "replicas"]) };
        assert_eq!(sub.owner(), "\"kcm\" with subresource \"status\" using apps/v1");
    }
}
