//! The query and path parameters of API operations, named and typed as upstream lists them.

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum In {
    /// A path segment (`{name}`); always required.
    Path,
    /// A query parameter.
    Query,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    /// Name.
    pub(crate) name: &'static str,
    /// Location.
    pub(crate) location: In,
    /// JSON type: `string`, `integer` or `boolean`.
    pub(crate) ty: &'static str,
    /// What it does.
    pub(crate) description: String,
}

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param { name, location: In::Query, ty, description: description.to_owned() }
}

/// `{namespace}`.
pub(crate) fn namespace() -> Param {
    Param {
        name: "namespace",
        location: In::Path,
        ty: "string",
        description: "object name and auth scope, such as for teams and projects".to_owned(),
    }
}

/// `{name}` of an object of `kind`.
pub(crate) fn name(kind: &str) -> Param {
    Param { name: "name", location: In::Path, ty: "string", description: format!("name of the {kind}") }
}

/// `{path}` of a proxy request.
pub(crate) fn proxy_path() -> Param {
    Param { name: "path", location: In::Path, ty: "string", description: "path to the resource".to_owned() }
}

/// `pretty`, accepted by every operation.
pub(crate) fn pretty() -> Param {
    query("pretty", "string", "If 'true', then the output is pretty printed.")
}

fn dry_run() -> Param {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run \
         stages will be processed",
    )
}

fn field_manager() -> Param {
    query(
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. Required for apply \
         requests (application/apply-patch), optional for other patch types.",
    )
}

/// The parameter kubectl looks for to decide that the server validates fields itself.
fn field_validation() -> Param {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing \
         unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped. - Warn: a \
         warning is sent for each unknown field that is dropped (the default). - Strict: the request fails with a \
         BadRequest error naming every unknown and duplicate field.",
    )
}

/// Parameters of list (and watch) requests.
pub(crate) fn list() -> Vec<Param> {
    vec![
        query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        query("continue", "string", "The continue token of a previous paginated list call."),
        query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
        query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
        query("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "sendInitialEvents=true may be set together with watch=true to begin the watch stream with synthetic events of the current state.",
        ),
        query("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
    ]
}

/// Parameters of create and replace requests.
pub(crate) fn write() -> Vec<Param> {
    vec![dry_run(), field_manager(), field_validation()]
}

/// Parameters of patch requests.
pub(crate) fn patch() -> Vec<Param> {
    let mut params = write();
    params.push(query(
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. Must be unset for non-apply patch requests.",
    ));
    params
}

/// Parameters of delete requests.
pub(crate) fn delete() -> Vec<Param> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy."),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
        ),
    ]
}

/// Parameters of delete-collection requests: a delete's and a list's.
pub(crate) fn delete_collection() -> Vec<Param> {
    let mut params = delete();
    params.extend(list().into_iter().filter(|p| !matches!(p.name, "allowWatchBookmarks" | "watch")));
    params.sort_by_key(|p| p.name);
    params
}

/// Parameters of a pod's `log` subresource.
pub(crate) fn log() -> Vec<Param> {
    vec![
        query("container", "string", "The container for which to stream logs."),
        query("follow", "boolean", "Follow the log stream of the pod."),
        query("insecureSkipTLSVerifyBackend", "boolean", "Do not verify the serving certificate of the kubelet."),
        query(
            "limitBytes",
            "integer",
            "The number of bytes to read from the server before terminating the log output.",
        ),
        query("previous", "boolean", "Return previous terminated container logs."),
        query("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
        query("stream", "string", "Which container log stream to return: All, Stdout or Stderr."),
        query("tailLines", "integer", "The number of lines from the end of the logs to show."),
        query("timestamps", "boolean", "Add an RFC3339 timestamp at the beginning of every line of log output."),
    ]
}

/// Parameters of a pod's `exec` (with `command`) or `attach` subresource.
pub(crate) fn exec(with_command: bool) -> Vec<Param> {
    let mut params = Vec::new();
    if with_command {
        params.push(query("command", "string", "Command is the remote command to execute. argv array."));
    }
    params.extend([
        query("container", "string", "The container in which to run."),
        query("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
        query("stdin", "boolean", "Redirect the standard input stream of the pod for this call."),
        query("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
        query("tty", "boolean", "TTY if true indicates that a tty will be allocated."),
    ]);
    params
}

/// Parameters of a pod's `portforward` subresource.
pub(crate) fn portforward() -> Vec<Param> {
    vec![query("ports", "integer", "List of ports to forward.")]
}

/// Parameters of a `proxy` subresource without a `{path}`.
pub(crate) fn proxy() -> Vec<Param> {
    vec![query("path", "string", "Path is the URL path to use for the current proxy request.")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_and_write_carry_field_validation() {
        assert!(patch().iter().any(|p| p.name == "fieldValidation"));
        assert!(write().iter().any(|p| p.name == "fieldManager"));
        let dc: Vec<_> = delete_collection().into_iter().map(|p| p.name).collect();
        assert!(dc.contains(&"labelSelector") && dc.contains(&"gracePeriodSeconds") && !dc.contains(&"watch"));
    }
}
