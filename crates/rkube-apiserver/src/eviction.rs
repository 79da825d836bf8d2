//! The `pods/eviction` subresource (policy/v1 and v1beta1 Eviction bodies): a pod delete that honours the
//! pod's PodDisruptionBudget, as upstream's `EvictionREST`. A budget allowing a disruption is decremented
//! (and the pod recorded in `status.disruptedPods`) with a compare-and-swap before the pod is deleted; a
//! budget allowing none answers 429 so that clients such as `kubectl drain` retry.

use std::time::Duration;

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::registry::{DeleteOpts, Registry, WriteCtx};
use crate::resource::ResourceDef;

/// Upstream's `EvictionsRetry` has 20 steps; our waits are shorter (conflicts here are in-process).
const RETRIES: usize = 20;
/// Upstream's `MaxDisruptedPodSize`.
const MAX_DISRUPTED_PODS: usize = 2000;
/// Upstream's answer (a 500 Status) for a pod several budgets select.
const MORE_THAN_ONE: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
/// What every refused eviction says.
const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn str_at<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.pointer(ptr).and_then(Value::as_str)
}

fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// 429 TooManyRequests with a `DisruptionBudget` cause, as upstream's `NewTooManyRequests` plus cause.
fn too_many_requests(cause: String, retry_after: i64) -> ApiError {
    let mut details = json!({ "causes": [{ "reason": "DisruptionBudget", "message": cause }] });
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError { code: 429, reason: "TooManyRequests", message: VIOLATION.to_owned(), details: Some(details) }
}

/// The budget has changed since its controller last looked at it.
fn still_processing(pdb: &str) -> ApiError {
    too_many_requests(format!("The disruption budget {pdb} is still being processed by the server."), 10)
}

fn success() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True")))
}

/// Pods whose eviction disrupts nothing more: finished, not started, or already being deleted.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(str_at(pod, "/status/phase"), Some("Succeeded" | "Failed" | "Pending"))
        || pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// Pending pods are deleted at the revision read, so that one turning ready meanwhile is not deleted unchecked.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !matches!(str_at(pod, "/status/phase"), Some("Succeeded" | "Failed"))
        && pod.pointer("/metadata/deletionTimestamp").is_none()
}

/// The DeleteOptions of the eviction, with the request's and the body's `dryRun` reconciled as upstream.
fn delete_options(body: &Value, ctx: &WriteCtx) -> Result<DeleteOpts, ApiError> {
    let opts = body.get("deleteOptions").filter(|o| o.is_object());
    let text = |p: &str| opts.and_then(|o| o.pointer(p)).and_then(Value::as_str).map(str::to_owned);
    let body_dry: Vec<&str> = opts
        .and_then(|o| o.get("dryRun"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ctx.dry_run && !body_dry.is_empty() && body_dry != ["All"] {
        return Err(ApiError::internal(format!(
            "Non-matching dry-run options in request and content: [All] and [{}]",
            body_dry.join(" ")
        )));
    }
    Ok(DeleteOpts {
        grace_period_seconds: opts.and_then(|o| o.get("gracePeriodSeconds")).and_then(Value::as_i64),
        propagation_policy: text("/propagationPolicy"),
        precondition_uid: text("/preconditions/uid"),
        precondition_rv: text("/preconditions/resourceVersion"),
        dry_run: ctx.dry_run || body_dry.contains(&"All"),
    })
}

/// The budgets whose selector matches the pod; a nil or empty selector matches nothing here (upstream).
fn budgets_for(registry: &Registry, ns: Option<&str>, pod: &Value) -> Vec<Value> {
    let labels = crate::meta::labels(pod);
    let prefix = registry.prefix(&ResourceDef::builtin_named("policy", "poddisruptionbudgets"), ns);
    let (pdbs, _) = registry.cache().list(&prefix);
    pdbs.iter()
        .map(|p| p.value.clone())
        .filter(|pdb| {
            crate::selector::from_label_selector(pdb.pointer("/spec/selector"))
                .is_some_and(|s| !s.is_empty() && s.matches(&labels))
        })
        .collect()
}

/// Sets the budget's `DisruptionAllowed` condition from its `disruptionsAllowed`, as upstream's
/// `UpdateDisruptionAllowedCondition` (the transition time moves only when the status flips).
pub(crate) fn set_disruption_allowed_condition(pdb: &mut Value, now: &str) {
    let allowed = int_at(pdb, "/status/disruptionsAllowed") > 0;
    let (status, reason) = if allowed { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
    let generation = int_at(pdb, "/status/observedGeneration");
    let mut conds = pdb.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let existing = conds.iter_mut().find(|c| c.get("type") == Some(&json!("DisruptionAllowed")));
    match existing {
        Some(c) => {
            if c.get("status") != Some(&json!(status)) {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!("");
            c["observedGeneration"] = json!(generation);
        }
        None => conds.push(json!({
            "type": "DisruptionAllowed", "status": status, "reason": reason, "message": "",
            "observedGeneration": generation, "lastTransitionTime": now,
        })),
    }
    pdb["status"]["conditions"] = json!(conds);
}

/// Upstream's `checkAndDecrement` on the budget as stored now: the budget with one disruption fewer and
/// the pod recorded as disrupted, or why the eviction is refused.
fn check_and_decrement(pdb: &Value, pod: &str, now: &str) -> Result<Value, ApiError> {
    let name = str_at(pdb, "/metadata/name").unwrap_or_default();
    if int_at(pdb, "/status/observedGeneration") < int_at(pdb, "/metadata/generation") {
        return Err(still_processing(name));
    }
    let allowed = int_at(pdb, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden_because(
            "policy",
            "poddisruptionbudget",
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb.pointer("/status/disruptedPods").and_then(Value::as_object).map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden_because(
            "policy",
            "poddisruptionbudget",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int_at(pdb, "/status/desiredHealthy"),
                int_at(pdb, "/status/currentHealthy")
            ),
            0,
        ));
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        set_disruption_allowed_condition(&mut next, now);
    }
    if !next["status"]["disruptedPods"].is_object() {
        next["status"]["disruptedPods"] = json!({});
    }
    next["status"]["disruptedPods"][pod] = json!(now);
    Ok(next)
}

/// Marks the pod `DisruptionTarget` (reason `EvictionByEvictionAPI`) and deletes it, as upstream's
/// `addConditionAndDeletePod`: preconditions are checked against the latest pod, and a resourceVersion
/// precondition moves to the revision of the condition's own write.
async fn mark_and_delete(
    registry: &Registry,
    pods: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    mut opts: DeleteOpts,
    ctx: &WriteCtx,
) -> Result<(), ApiError> {
    if !opts.dry_run {
        let (updated, _) = registry
            .update_with(pods, ns, name, Some("status"), ctx, |current| {
                let Some(cur) = current else { return Err(ApiError::not_found("", "pods", name)) };
                let uid = str_at(cur, "/metadata/uid").unwrap_or_default();
                if let Some(want) = opts.precondition_uid.as_deref().filter(|u| !u.is_empty() && *u != uid) {
                    let why = format!(
                        "the UID in the precondition ({want}) does not match the UID in record ({uid}). \
                         The object might have been deleted and then recreated"
                    );
                    return Err(ApiError::conflict_with("", "Pod", name, &why, vec![]));
                }
                let rv = str_at(cur, "/metadata/resourceVersion").unwrap_or_default();
                if let Some(want) = opts.precondition_rv.as_deref().filter(|r| !r.is_empty() && *r != rv) {
                    let why = format!(
                        "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in \
                         record ({rv}). The object might have been modified"
                    );
                    return Err(ApiError::conflict_with("", "Pod", name, &why, vec![]));
                }
                let mut next = cur.clone();
                if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                let mut conds =
                    next.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
                let now = crate::meta::now();
                match conds.iter_mut().find(|c| c.get("type") == Some(&json!("DisruptionTarget"))) {
                    Some(c) => {
                        if c.get("status") != Some(&json!("True")) {
                            c["lastTransitionTime"] = json!(now);
                        }
                        c["status"] = json!("True");
                        c["reason"] = json!("EvictionByEvictionAPI");
                        c["message"] = json!("Eviction API: evicting");
                    }
                    None => conds.push(json!({
                        "type": "DisruptionTarget", "status": "True", "lastProbeTime": null, "lastTransitionTime": now,
                        "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
                    })),
                }
                next["status"]["conditions"] = json!(conds);
                Ok(next)
            })
            .await?;
        if opts.precondition_rv.is_some() {
            opts.precondition_rv = str_at(&updated, "/metadata/resourceVersion").map(str::to_owned);
        }
    }
    registry.delete(pods, ns, name, &opts).await.map(|_| ())
}

/// Evicts a pod. The answer is a `Status` whose `code` is the HTTP status to send (upstream answers a pod
/// covered by several budgets with a 500 Status object rather than an error).
pub(crate) async fn evict(
    registry: &Registry,
    pods: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    body: &Value,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    if str_at(body, "/metadata/name").unwrap_or_default() != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    let original = delete_options(body, ctx)?;
    let mut ctx = ctx.clone();
    ctx.dry_run = original.dry_run;
    let rv_unset = original.precondition_rv.is_none();

    // Pods the budget need not guard are deleted straight away, retrying conflicts unless the client
    // asked for a resourceVersion itself.
    let mut attempt = 0;
    let pod = loop {
        attempt += 1;
        let pod = registry.get(pods, ns, name).await?;
        if !can_ignore_pdb(&pod) {
            break pod;
        }
        let mut opts = original.clone();
        if should_enforce_resource_version(&pod) && rv_unset {
            opts.precondition_rv = str_at(&pod, "/metadata/resourceVersion").map(str::to_owned);
        }
        match mark_and_delete(registry, pods, ns, name, opts, &ctx).await {
            Ok(()) => return Ok(success()),
            Err(e) if e.code == 409 && rv_unset && attempt < RETRIES => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    };

    let pdbs = budgets_for(registry, ns, &pod);
    if pdbs.len() > 1 {
        return Ok(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 500,
            "message": MORE_THAN_ONE,
        }));
    }
    let mut guard_with_rv = None;
    if let Some(pdb) = pdbs.first() {
        let pdb_name = str_at(pdb, "/metadata/name").unwrap_or_default().to_owned();
        let unhealthy_ok = !is_ready(&pod)
            && (str_at(pdb, "/spec/unhealthyPodEvictionPolicy") == Some("AlwaysAllow")
                || (int_at(pdb, "/status/currentHealthy") >= int_at(pdb, "/status/desiredHealthy")
                    && int_at(pdb, "/status/desiredHealthy") > 0));
        if unhealthy_ok {
            // An unready pod does not count as healthy: deleting it disrupts nothing, unless it turns
            // ready meanwhile (hence the resourceVersion precondition).
            guard_with_rv = Some(pdb_name);
        } else {
            let pdb_def = ResourceDef::builtin_named("policy", "poddisruptionbudgets");
            if original.dry_run {
                let current = registry.get(&pdb_def, ns, &pdb_name).await?;
                check_and_decrement(&current, name, &crate::meta::now())?;
            } else {
                let mut pdb_ctx = ctx.clone();
                pdb_ctx.field_manager = String::new();
                pdb_ctx.user_agent = "kube-apiserver".into();
                registry
                    .update_with(&pdb_def, ns, &pdb_name, Some("status"), &pdb_ctx, |current| {
                        let Some(cur) = current else {
                            return Err(ApiError::not_found("policy", "poddisruptionbudgets", &pdb_name));
                        };
                        let mut next = check_and_decrement(cur, name, &crate::meta::now())?;
                        // No precondition: the registry retries the whole check on a concurrent change.
                        if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                            m.remove("resourceVersion");
                        }
                        Ok(next)
                    })
                    .await?;
            }
        }
    }

    let mut opts = original.clone();
    if guard_with_rv.is_some() && rv_unset {
        opts.precondition_rv = str_at(&pod, "/metadata/resourceVersion").map(str::to_owned);
    }
    match mark_and_delete(registry, pods, ns, name, opts, &ctx).await {
        Ok(()) => Ok(success()),
        Err(e) if e.code == 409 && rv_unset => match guard_with_rv {
            // The pod changed (perhaps became ready) after we decided: the client retries.
            Some(pdb) => Err(still_processing(&pdb)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({
            "metadata": { "name": "web", "generation": generation },
            "status": { "disruptionsAllowed": allowed, "desiredHealthy": 2, "currentHealthy": 2,
                        "observedGeneration": observed, "expectedPods": 3 },
        })
    }

    #[test]
    fn decrements_and_records_the_pod() {
        let next = check_and_decrement(&pdb(1, 1, 1), "p1", "2026-01-01T00:00:00Z").expect("allowed");
        assert_eq!(next.pointer("/status/disruptionsAllowed"), Some(&json!(0)));
        assert_eq!(next.pointer("/status/disruptedPods/p1"), Some(&json!("2026-01-01T00:00:00Z")));
        let cond = &next.pointer("/status/conditions").and_then(Value::as_array).expect("conditions")[0];
        assert_eq!(cond["reason"], "InsufficientPods");
        assert_eq!(cond["status"], "False");
    }

    #[test]
    fn refuses_with_upstreams_wording() {
        let e = check_and_decrement(&pdb(0, 1, 1), "p1", "t").expect_err("refused");
        assert_eq!(e.code, 429);
        assert_eq!(e.message, "Cannot evict pod as it would violate the pod's disruption budget.");
        let d = e.details.expect("details");
        assert_eq!(d.pointer("/causes/0/reason"), Some(&json!("DisruptionBudget")));
        assert_eq!(
            d.pointer("/causes/0/message"),
            Some(&json!("The disruption budget web needs 2 healthy pods and has 2 currently"))
        );
        let e = check_and_decrement(&pdb(1, 2, 1), "p1", "t").expect_err("stale");
        assert_eq!(e.code, 429);
        assert_eq!(e.details.and_then(|d| d.get("retryAfterSeconds").cloned()), Some(json!(10)));
        assert_eq!(check_and_decrement(&pdb(-1, 1, 1), "p1", "t").expect_err("negative").code, 403);
    }

    #[test]
    fn pending_terminal_and_terminating_pods_skip_the_budget() {
        assert!(can_ignore_pdb(&json!({ "status": { "phase": "Pending" } })));
        assert!(can_ignore_pdb(&json!({ "status": { "phase": "Succeeded" } })));
        assert!(can_ignore_pdb(&json!({ "metadata": { "deletionTimestamp": "x" }, "status": { "phase": "Running" } })));
        assert!(!can_ignore_pdb(&json!({ "status": { "phase": "Running" } })));
        assert!(should_enforce_resource_version(&json!({ "status": { "phase": "Pending" } })));
        assert!(!should_enforce_resource_version(&json!({ "status": { "phase": "Failed" } })));
    }
}
