//! The paths of subresources (`status`, `scale`, `binding`, `log`, `exec`, `proxy`, ...).

use super::{ANY, Ctx, Operation, PathItem, Payload, create_op, patch_op, read_op, replace_op};
use crate::gvk::{Gvk, capitalize};
use crate::params::{self, Param};

/// A connect operation (exec, attach, portforward, proxy): the body is a raw stream.
fn connect_op(ctx: &Ctx<'_>, method: &'static str, sub: &str, options_kind: &str, with_path: bool) -> Operation {
    let kind = &ctx.r.gvk.kind;
    let suffix = if with_path { "WithPath" } else { "" };
    let mut op = ctx.op(
        method,
        "connect",
        format!("connect{}{}{}{kind}{}{suffix}", ctx.prefix, capitalize(method), ctx.scope, capitalize(sub)),
        format!("connect {} requests to {sub} of {kind}", method.to_uppercase()),
    );
    op.responses = vec![(200, Payload::Text)];
    op.produces = ANY;
    op.gvk = Some(Gvk::new(&ctx.r.gvk.group, &ctx.r.gvk.version, options_kind));
    op
}

/// The paths of one subresource of the object at `item`.
pub(super) fn paths(
    ctx: &Ctx<'_>,
    item: &str,
    sub: &str,
    item_params: Vec<Param>,
    sub_definition: &dyn Fn(&Gvk) -> Option<String>,
) -> Vec<PathItem> {
    let r = ctx.r;
    let g = &r.gvk;
    let path = format!("{item}/{sub}");
    let one = |ops: Vec<Operation>| vec![PathItem { path: path.clone(), params: item_params.clone(), ops }];
    let body_kind = |gvk: Gvk| sub_definition(&gvk).map(|d| (d, gvk));
    match sub {
        "status" => {
            let d = &r.definition;
            one(vec![
                read_op(ctx, "Status", d, Some(g.clone())),
                replace_op(ctx, "Status", d, Some(g.clone())),
                patch_op(ctx, "Status", d, Some(g.clone())),
            ])
        }
        "scale" => match body_kind(Gvk::new("autoscaling", "v1", "Scale")) {
            Some((d, gvk)) => one(vec![
                read_op(ctx, "Scale", &d, Some(gvk.clone())),
                replace_op(ctx, "Scale", &d, Some(gvk.clone())),
                patch_op(ctx, "Scale", &d, Some(gvk)),
            ]),
            None => Vec::new(),
        },
        "finalize" => one(vec![replace_op(ctx, "Finalize", &r.definition, Some(g.clone()))]),
        "binding" | "eviction" | "token" => {
            let gvk = match sub {
                "binding" => Gvk::new("", "v1", "Binding"),
                "eviction" => Gvk::new("policy", "v1", "Eviction"),
                _ => Gvk::new("authentication.k8s.io", "v1", "TokenRequest"),
            };
            match body_kind(gvk) {
                Some((d, gvk)) => {
                    let what = gvk.kind.clone();
                    one(vec![create_op(ctx, &d, &capitalize(sub), &what, Some(gvk))])
                }
                None => Vec::new(),
            }
        }
        "log" => {
            let mut op = read_op(ctx, "Log", &r.definition, Some(g.clone()));
            op.params = params::log();
            op.responses = vec![(200, Payload::Text)];
            op.produces =
                &["text/plain", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];
            one(vec![op])
        }
        "exec" | "attach" => {
            let options = format!("{}{}Options", g.kind, capitalize(sub));
            let ops = ["get", "post"]
                .into_iter()
                .map(|m| {
                    let mut op = connect_op(ctx, m, sub, &options, false);
                    op.params = params::exec(sub == "exec");
                    op
                })
                .collect();
            one(ops)
        }
        "portforward" => {
            let options = format!("{}PortForwardOptions", g.kind);
            let ops = ["get", "post"]
                .into_iter()
                .map(|m| {
                    let mut op = connect_op(ctx, m, sub, &options, false);
                    op.params = params::portforward();
                    op
                })
                .collect();
            one(ops)
        }
        "proxy" => {
            let options = format!("{}ProxyOptions", g.kind);
            let methods = ["delete", "get", "head", "options", "patch", "post", "put"];
            let base = methods
                .into_iter()
                .map(|m| {
                    let mut op = connect_op(ctx, m, sub, &options, false);
                    op.params = params::proxy();
                    op
                })
                .collect();
            let mut with_path_params = item_params.clone();
            with_path_params.insert(1, params::proxy_path());
            let with_path = methods.into_iter().map(|m| connect_op(ctx, m, sub, &options, true)).collect();
            vec![
                PathItem { path: path.clone(), params: item_params.clone(), ops: base },
                PathItem { path: format!("{path}/{{path}}"), params: with_path_params, ops: with_path },
            ]
        }
        _ => Vec::new(),
    }
}
