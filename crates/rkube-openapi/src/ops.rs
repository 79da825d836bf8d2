//! The REST operations of a resource (paths, verbs, parameters, bodies), independent of OpenAPI version.
//!
//! `v2.rs` and `v3.rs` render the same model, so both documents always describe the same API.

use crate::gvk::{Gvk, capitalize, group_camel, tag};
use crate::params::{self, Param};
use crate::types;

mod subresources;

/// Content types of built-in responses.
const BUILTIN_PRODUCES: &[&str] = &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];
/// Content types of built-in list responses (a list call may be a watch).
const BUILTIN_LIST_PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
/// Content types of custom resource responses (no protobuf for them, as upstream).
const CUSTOM_PRODUCES: &[&str] = &["application/json", "application/yaml"];
/// Content types of custom resource list responses.
const CUSTOM_LIST_PRODUCES: &[&str] = &["application/json", "application/yaml", "application/json;stream=watch"];
/// Patch types of built-ins.
const BUILTIN_PATCH: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Patch types of custom resources: strategic merge needs Go struct tags, which they do not have.
const CUSTOM_PATCH: &[&str] =
    &["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"];
/// Content types of connect (exec, attach, proxy) responses.
const ANY: &[&str] = &["*/*"];

/// What a resource looks like to the path builder.
#[derive(Debug, Clone)]
pub(crate) struct ResourceDesc {
    /// Group, version and kind of one object.
    pub(crate) gvk: Gvk,
    /// Plural name in URLs.
    pub(crate) plural: String,
    /// Whether objects live in namespaces.
    pub(crate) namespaced: bool,
    /// Verbs, as discovery lists them.
    pub(crate) verbs: Vec<String>,
    /// Subresources (`status`, `scale`, `log`, ...).
    pub(crate) subresources: Vec<String>,
    /// Definition name of the kind.
    pub(crate) definition: String,
    /// Definition name of its list, if it is listable.
    pub(crate) list_definition: Option<String>,
    /// Built-in (protobuf and strategic merge patch) or custom.
    pub(crate) builtin: bool,
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    /// Definition name of its schema.
    pub(crate) definition: String,
    /// Accepted content types.
    pub(crate) consumes: &'static [&'static str],
    /// Whether a body must be sent (delete options are optional).
    pub(crate) required: bool,
}

/// What a successful response carries.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// An object of a definition.
    Definition(String),
    /// Text (logs, connect streams).
    Text,
}

/// One operation on a path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// HTTP method, lower-case.
    pub(crate) method: &'static str,
    /// `x-kubernetes-action`: get, list, post, put, patch, delete, deletecollection, connect.
    pub(crate) action: &'static str,
    /// `operationId`.
    pub(crate) id: String,
    /// What it does.
    pub(crate) description: String,
    /// Operation parameters (path-wide ones are on the path item).
    pub(crate) params: Vec<Param>,
    /// Request body.
    pub(crate) body: Option<Body>,
    /// Success status codes and what they carry.
    pub(crate) responses: Vec<(u16, Payload)>,
    /// Response content types.
    pub(crate) produces: &'static [&'static str],
    /// `x-kubernetes-group-version-kind`.
    pub(crate) gvk: Option<Gvk>,
    /// Tag (`apps_v1`).
    pub(crate) tag: String,
}

/// A path and its operations.
#[derive(Debug, Clone)]
pub(crate) struct PathItem {
    /// URL path with `{namespace}`, `{name}`, `{path}` templates.
    pub(crate) path: String,
    /// Parameters of every operation of the path.
    pub(crate) params: Vec<Param>,
    /// Operations.
    pub(crate) ops: Vec<Operation>,
}

/// Everything an operation builder needs to know about the resource and path.
struct Ctx<'a> {
    r: &'a ResourceDesc,
    /// `AppsV1`, `CoreV1`.
    prefix: String,
    /// `Namespaced` or empty.
    scope: &'static str,
    tag: String,
}

impl Ctx<'_> {
    fn op(&self, method: &'static str, action: &'static str, id: String, description: String) -> Operation {
        Operation {
            method,
            action,
            id,
            description,
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: if self.r.builtin { BUILTIN_PRODUCES } else { CUSTOM_PRODUCES },
            gvk: Some(self.r.gvk.clone()),
            tag: self.tag.clone(),
        }
    }

    fn has(&self, verb: &str) -> bool {
        self.r.verbs.iter().any(|v| v == verb)
    }
}

/// The discovery path of a group-version (`/apis/apps/v1/`): upstream's `getAPIResources`.
pub(crate) fn discovery_path(group: &str, version: &str) -> PathItem {
    let base = if group.is_empty() { format!("/api/{version}/") } else { format!("/apis/{group}/{version}/") };
    let op = Operation {
        method: "get",
        action: "",
        id: format!("get{}{}APIResources", group_camel(group), capitalize(version)),
        description: "get available resources".to_owned(),
        params: Vec::new(),
        body: None,
        responses: vec![(200, Payload::Definition(types::API_RESOURCE_LIST.to_owned()))],
        produces: BUILTIN_PRODUCES,
        gvk: None,
        tag: tag(group, version),
    };
    PathItem { path: base, params: Vec::new(), ops: vec![op] }
}

/// The paths of one resource and its subresources. `sub_definition` names the definition of a
/// subresource's body kind (`Scale`, `Eviction`, ...) when it has one.
pub(crate) fn resource_paths(r: &ResourceDesc, sub_definition: &dyn Fn(&Gvk) -> Option<String>) -> Vec<PathItem> {
    let g = &r.gvk;
    let ctx = Ctx {
        r,
        prefix: format!("{}{}", group_camel(&g.group), capitalize(&g.version)),
        scope: if r.namespaced { "Namespaced" } else { "" },
        tag: tag(&g.group, &g.version),
    };
    let root =
        if g.group.is_empty() { format!("/api/{}", g.version) } else { format!("/apis/{}/{}", g.group, g.version) };
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let scope_params = || {
        let mut p = Vec::new();
        if r.namespaced {
            p.push(params::namespace());
        }
        p.push(params::pretty());
        p
    };
    let item_params = || {
        let mut p = vec![params::name(&g.kind)];
        p.extend(scope_params());
        p
    };
    let mut paths = Vec::new();

    let mut ops = Vec::new();
    if ctx.has("list") {
        ops.push(list_op(&ctx, false));
    }
    if ctx.has("create") {
        ops.push(create_op(&ctx, &r.definition, "", &g.kind, Some(g.clone())));
    }
    if ctx.has("deletecollection") {
        let mut op = ctx.op(
            "delete",
            "deletecollection",
            format!("delete{}Collection{}{}", ctx.prefix, ctx.scope, g.kind),
            format!("delete collection of {}", g.kind),
        );
        op.params = params::delete_collection();
        op.body = Some(Body { definition: types::DELETE_OPTIONS.to_owned(), consumes: ANY, required: false });
        op.responses = vec![(200, Payload::Definition(types::STATUS.to_owned()))];
        ops.push(op);
    }
    if !ops.is_empty() {
        paths.push(PathItem { path: collection.clone(), params: scope_params(), ops });
    }

    // A namespaced resource is also listed across all namespaces.
    if r.namespaced && ctx.has("list") {
        paths.push(PathItem {
            path: format!("{root}/{}", r.plural),
            params: vec![params::pretty()],
            ops: vec![list_op(&ctx, true)],
        });
    }

    let item = format!("{collection}/{{name}}");
    let mut ops = Vec::new();
    if ctx.has("get") {
        ops.push(read_op(&ctx, "", &r.definition, Some(g.clone())));
    }
    if ctx.has("update") {
        ops.push(replace_op(&ctx, "", &r.definition, Some(g.clone())));
    }
    if ctx.has("patch") {
        ops.push(patch_op(&ctx, "", &r.definition, Some(g.clone())));
    }
    if ctx.has("delete") {
        let mut op = ctx.op(
            "delete",
            "delete",
            format!("delete{}{}{}", ctx.prefix, ctx.scope, g.kind),
            format!("delete a {}", g.kind),
        );
        op.params = params::delete();
        op.body = Some(Body { definition: types::DELETE_OPTIONS.to_owned(), consumes: ANY, required: false });
        op.responses = vec![
            (200, Payload::Definition(types::STATUS.to_owned())),
            (202, Payload::Definition(types::STATUS.to_owned())),
        ];
        ops.push(op);
    }
    if !ops.is_empty() {
        paths.push(PathItem { path: item.clone(), params: item_params(), ops });
    }

    for sub in &r.subresources {
        paths.extend(subresources::paths(&ctx, &item, sub, item_params(), sub_definition));
    }
    paths
}

fn list_op(ctx: &Ctx<'_>, all_namespaces: bool) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let (id, description) = if all_namespaces {
        (
            format!("list{}{kind}ForAllNamespaces", ctx.prefix),
            format!("list or watch objects of kind {kind} in all namespaces"),
        )
    } else {
        (format!("list{}{}{kind}", ctx.prefix, ctx.scope), format!("list or watch objects of kind {kind}"))
    };
    let mut op = ctx.op("get", "list", id, description);
    op.params = params::list();
    op.produces = if ctx.r.builtin { BUILTIN_LIST_PRODUCES } else { CUSTOM_LIST_PRODUCES };
    let list = ctx.r.list_definition.clone().unwrap_or_else(|| ctx.r.definition.clone());
    op.responses = vec![(200, Payload::Definition(list))];
    op
}

fn create_op(ctx: &Ctx<'_>, definition: &str, sub: &str, what: &str, gvk: Option<Gvk>) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let mut op =
        ctx.op("post", "post", format!("create{}{}{kind}{sub}", ctx.prefix, ctx.scope), format!("create a {what}"));
    op.params = params::write();
    op.body = Some(Body { definition: definition.to_owned(), consumes: ANY, required: true });
    let d = || Payload::Definition(definition.to_owned());
    op.responses = vec![(200, d()), (201, d()), (202, d())];
    op.gvk = gvk;
    op
}

fn read_op(ctx: &Ctx<'_>, sub: &str, definition: &str, gvk: Option<Gvk>) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let what = if sub.is_empty() {
        format!("the specified {kind}")
    } else {
        format!("{} of the specified {kind}", sub.to_lowercase())
    };
    let mut op = ctx.op("get", "get", format!("read{}{}{kind}{sub}", ctx.prefix, ctx.scope), format!("read {what}"));
    op.responses = vec![(200, Payload::Definition(definition.to_owned()))];
    op.gvk = gvk;
    op
}

fn replace_op(ctx: &Ctx<'_>, sub: &str, definition: &str, gvk: Option<Gvk>) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let what = if sub.is_empty() {
        format!("the specified {kind}")
    } else {
        format!("{} of the specified {kind}", sub.to_lowercase())
    };
    let mut op =
        ctx.op("put", "put", format!("replace{}{}{kind}{sub}", ctx.prefix, ctx.scope), format!("replace {what}"));
    op.params = params::write();
    op.body = Some(Body { definition: definition.to_owned(), consumes: ANY, required: true });
    let d = || Payload::Definition(definition.to_owned());
    op.responses = vec![(200, d()), (201, d())];
    op.gvk = gvk;
    op
}

fn patch_op(ctx: &Ctx<'_>, sub: &str, definition: &str, gvk: Option<Gvk>) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let what = if sub.is_empty() {
        format!("the specified {kind}")
    } else {
        format!("{} of the specified {kind}", sub.to_lowercase())
    };
    let mut op = ctx.op(
        "patch",
        "patch",
        format!("patch{}{}{kind}{sub}", ctx.prefix, ctx.scope),
        format!("partially update {what}"),
    );
    op.params = params::patch();
    op.body = Some(Body {
        definition: types::PATCH.to_owned(),
        consumes: if ctx.r.builtin { BUILTIN_PATCH } else { CUSTOM_PATCH },
        required: true,
    });
    let d = || Payload::Definition(definition.to_owned());
    op.responses = vec![(200, d()), (201, d())];
    op.gvk = gvk;
    op
}
