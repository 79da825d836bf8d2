//! The resource verbs: get, list, watch, create, update, patch, delete, deletecollection, and the
//! generic subresources (status, finalize). Answers in the client's format, as a Table when asked.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::authn::User;
use crate::codec::{self, Output};
use crate::handler::{read_body, respond, respond_encoded, success_status};
use crate::patch::{self, PatchType};
use crate::query::Query;
use crate::registry::{DeleteOpts, Object, WriteCtx};
use crate::request_info::RequestInfo;
use crate::resource::ResourceDef;
use crate::state::AppState;

fn answer(def: &ResourceDef, status: StatusCode, obj: &Value, out: Output, query: &Query) -> Response {
    match out {
        Output::Table => {
            let meta =
                json!({ "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")) });
            let t = crate::printers::table(
                def,
                std::slice::from_ref(obj),
                meta,
                query.get("includeObject").unwrap_or("Metadata"),
                true,
            );
            respond(status, &t, Output::Json)
        }
        _ => respond(status, obj, out),
    }
}

/// The answer to a write: a JSON answer sends the written object's shared serialization (the one its watchers
/// send too) instead of serializing it again.
fn answer_written(def: &ResourceDef, status: StatusCode, obj: &Object, out: Output, query: &Query) -> Response {
    match (out, obj.json()) {
        (Output::Json, Some(json)) => respond_encoded(status, axum::body::Body::from(json.clone()), "application/json"),
        _ => answer(def, status, obj, out, query),
    }
}

fn write_ctx(query: &Query, user_agent: &str) -> Result<WriteCtx, ApiError> {
    let field_manager = query.get("fieldManager").unwrap_or_default().to_owned();
    let causes = rkube_ssa::validate_field_manager(&field_manager, "fieldManager");
    if !causes.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "CreateOptions", "", causes));
    }
    Ok(WriteCtx {
        dry_run: query.dry_run()?,
        field_manager,
        field_validation: crate::fieldvalidation::Mode::parse(query.get("fieldValidation"))?,
        warnings: Default::default(),
        user_agent: user_agent.to_owned(),
        apply: false,
    })
}

/// Adds the request's warnings as `Warning: 299 - "..."` headers, as upstream does.
fn with_warnings(mut r: Response, ctx: &WriteCtx) -> Response {
    for w in ctx.warnings.take() {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            r.headers_mut().append(http::header::WARNING, v);
        }
    }
    r
}

/// Handles one resource request.
pub(crate) async fn handle(
    app: &Arc<AppState>,
    user: &User,
    def: &Arc<ResourceDef>,
    info: &RequestInfo,
    query: &Query,
    out: Output,
    req: Request,
) -> Result<Response, ApiError> {
    if !def.allows(info.verb) && info.subresource.is_none() {
        return Err(ApiError::method_not_allowed(info.verb, &def.resource));
    }
    if let Some(sub) = info.subresource.as_deref()
        && !def.subresources.iter().any(|s| s == sub)
    {
        return Err(ApiError::no_such_resource());
    }
    let ns = if def.namespaced { info.namespace.as_deref() } else { None };
    if def.namespaced && ns.is_none() && !matches!(info.verb, "list" | "watch") {
        return Err(ApiError::no_such_resource());
    }
    let registry = &app.registry;
    let name = info.name.as_deref().unwrap_or_default();
    let user_agent =
        req.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    match (info.verb, info.subresource.as_deref()) {
        ("get", None | Some("status") | Some("approval")) => {
            let obj = registry.get_shared(def, ns, name).await?;
            if out == Output::Json {
                // The cached object's JSON is reused as is: no re-serialization per read.
                let mut r = Response::new(axum::body::Body::from(obj.json().clone()));
                r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                return Ok(r);
            }
            Ok(answer(def, StatusCode::OK, &obj.value, out, query))
        }
        ("list", None) => {
            let list = registry.list(def, ns, &query.list()?).await?;
            Ok(match out {
                Output::Table => {
                    let items = list.item_values();
                    let t = crate::printers::table(
                        def,
                        &items,
                        list.metadata.clone(),
                        query.get("includeObject").unwrap_or("Metadata"),
                        true,
                    );
                    respond(StatusCode::OK, &t, Output::Json)
                }
                Output::Json => {
                    let mut r = Response::new(axum::body::Body::from(list.to_json()));
                    r.headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                    r
                }
                _ => respond(StatusCode::OK, &list.to_value(), out),
            })
        }
        ("watch", None) => {
            crate::watch::serve(app.clone(), def.clone(), ns.map(str::to_owned), info.name.clone(), query, out).await
        }
        ("create", None) if def.group.is_empty() && def.resource == "bindings" => {
            let (headers, body) = read_body(req).await?;
            let body = codec::decode_body(&headers, &body)?;
            let pod = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let pods = ResourceDef::builtin_named("", "pods");
            let status =
                crate::subresources::bind(registry, &pods, ns, &pod, &body, &write_ctx(query, &user_agent)?).await?;
            Ok(respond(StatusCode::CREATED, &status, out))
        }
        ("create", None) if !def.is_stored_resource() => {
            let (headers, body) = read_body(req).await?;
            let obj = codec::decode_body(&headers, &body)?;
            match crate::reviews::create(app, user, def, ns, &obj).await {
                Some(answer) => Ok(respond(StatusCode::CREATED, &answer?, out)),
                None => Err(ApiError::method_not_allowed("create", &def.resource)),
            }
        }
        ("create", Some("token")) if def.group.is_empty() && def.resource == "serviceaccounts" => {
            let (headers, body) = read_body(req).await?;
            let obj = codec::decode_body(&headers, &body)?;
            let (tr, warning) = crate::reviews::token_request(app, ns.unwrap_or_default(), name, &obj).await?;
            let mut r = respond(StatusCode::CREATED, &tr, out);
            if let Some(w) = warning
                && let Ok(v) = http::HeaderValue::from_str(&format!("299 - {w:?}"))
            {
                r.headers_mut().append(http::header::WARNING, v);
            }
            Ok(r)
        }
        ("create", None) => {
            let (headers, body) = read_body(req).await?;
            let mut obj = codec::decode_body(&headers, &body)?;
            if def.group == "certificates.k8s.io" && def.resource == "certificatesigningrequests" {
                crate::kinds::csr::record_requester(&mut obj, user);
            }
            let ctx = write_ctx(query, &user_agent)?;
            let created = registry.create(def, ns, obj, &ctx).await?;
            Ok(with_warnings(answer_written(def, StatusCode::CREATED, &created, out, query), &ctx))
        }
        ("update", None | Some("status") | Some("finalize") | Some("approval")) => {
            let (headers, body) = read_body(req).await?;
            let obj = codec::decode_body(&headers, &body)?;
            let ctx = write_ctx(query, &user_agent)?;
            // The decoded body is moved into the first attempt; a retry (after a conflict) decodes it again,
            // which is rarer and cheaper than copying every body.
            let mut first = Some(obj);
            let (updated, created) = registry
                .update_with(def, ns, name, info.subresource.as_deref(), &ctx, |_| match first.take() {
                    Some(o) => Ok(o),
                    None => codec::decode_body(&headers, &body),
                })
                .await?;
            Ok(with_warnings(
                answer_written(def, if created { StatusCode::CREATED } else { StatusCode::OK }, &updated, out, query),
                &ctx,
            ))
        }
        ("patch", None | Some("status") | Some("approval")) => {
            let (headers, body) = read_body(req).await?;
            let ct =
                headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let ty = PatchType::from_content_type(&ct)?;
            if ty == PatchType::Apply {
                let force = match query.get("force") {
                    None | Some("") => None,
                    Some("true") => Some(true),
                    Some("false") => Some(false),
                    Some(other) => return Err(ApiError::bad_request(format!("invalid force value {other:?}"))),
                };
                let mut ctx = write_ctx(query, &user_agent)?;
                rkube_ssa::validate_patch_options(true, &ctx.field_manager, force)?;
                let applied: Value = serde_yaml::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                if !applied.is_object() {
                    return Err(ApiError::bad_request("an apply patch must be an object"));
                }
                ctx.apply = true;
                let api_version = def.api_version();
                let schema = rkube_ssa::BuiltinSchema::for_kind(&api_version, &def.kind);
                let now = crate::meta::now();
                let manager = ctx.field_manager.clone();
                let sub = info.subresource.clone().unwrap_or_default();
                let reset = rkube_ssa::reset_fields_for(&sub, def.has_status());
                let (updated, created) = registry
                    .update_with(def, ns, name, info.subresource.as_deref(), &ctx, |current| {
                        let req = rkube_ssa::Request::new(&manager, &api_version, &def.kind, &now)
                            .with_subresource(&sub)
                            .with_reset_fields(&reset);
                        rkube_ssa::apply(current, &applied, force.unwrap_or(false), &req, &schema)
                            .map_err(|e| e.to_api_error())
                    })
                    .await?;
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                return Ok(with_warnings(answer_written(def, status, &updated, out, query), &ctx));
            }
            let patch_body: Value = if body.len() > codec::MAX_BODY {
                return Err(ApiError::too_large(codec::MAX_BODY));
            } else {
                codec::decode_json(&body)?
            };
            let ctx = write_ctx(query, &user_agent)?;
            let kind_path = def.kind.clone();
            let (updated, _) = registry
                .update_with(def, ns, name, info.subresource.as_deref(), &ctx, |current| match current {
                    Some(cur) => patch::apply(&kind_path, cur, &patch_body, ty),
                    None => Err(ApiError::not_found(&def.group, &def.resource, name)),
                })
                .await?;
            Ok(with_warnings(answer_written(def, StatusCode::OK, &updated, out, query), &ctx))
        }
        ("delete", None) => {
            let opts = delete_options(req, query).await?;
            let strategy = crate::kinds::strategy(def);
            let (obj, pending) = registry.delete(def, ns, name, &opts).await?;
            if pending || strategy.return_deleted_object() {
                // Still there (finalizers, grace period): upstream answers 200 with the object (202 when async).
                Ok(answer(def, StatusCode::OK, &obj, out, query))
            } else {
                let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
                Ok(respond(StatusCode::OK, &success_status(def, name, uid), out))
            }
        }
        ("deletecollection", None) => {
            let opts = delete_options(req, query).await?;
            let mut lq = query.list()?;
            lq.limit = None;
            lq.continue_token = None;
            let list = registry.list(def, ns, &lq).await?;
            let mut deleted = Vec::new();
            for item in list.item_values() {
                let item_name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
                match registry.delete(def, item_ns.as_deref(), &item_name, &opts).await {
                    Ok((obj, _)) => deleted.push(obj),
                    // Gone meanwhile: that is what was asked.
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let result = json!({
                "kind": format!("{}List", def.kind),
                "apiVersion": def.api_version(),
                "metadata": { "resourceVersion": list.metadata.get("resourceVersion").cloned().unwrap_or(json!("")) },
                "items": deleted,
            });
            Ok(respond(StatusCode::OK, &result, out))
        }
        ("get", Some("scale")) => {
            let obj = registry.get(def, ns, name).await?;
            Ok(respond(StatusCode::OK, &crate::subresources::scale_of(def, &obj), out))
        }
        ("update" | "patch", Some("scale")) => {
            let (headers, body) = read_body(req).await?;
            let ctx = write_ctx(query, &user_agent)?;
            let write = if info.verb == "update" {
                crate::subresources::ScaleWrite::Replace(codec::decode_body(&headers, &body)?)
            } else {
                let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let ty = PatchType::from_content_type(ct)?;
                if ty == PatchType::Apply {
                    return Err(ApiError::unsupported_media_type(ct));
                }
                crate::subresources::ScaleWrite::Patch(codec::decode_json(&body)?, ty)
            };
            let scale = crate::subresources::write_scale(registry, def, ns, name, write, &ctx).await?;
            Ok(respond(StatusCode::OK, &scale, out))
        }
        ("create", Some("binding")) => {
            let (headers, body) = read_body(req).await?;
            let body = codec::decode_body(&headers, &body)?;
            let status =
                crate::subresources::bind(registry, def, ns, name, &body, &write_ctx(query, &user_agent)?).await?;
            Ok(respond(StatusCode::CREATED, &status, out))
        }
        ("create", Some("eviction")) => {
            let (headers, body) = read_body(req).await?;
            let body = codec::decode_body(&headers, &body)?;
            let status =
                crate::eviction::evict(registry, def, ns, name, &body, &write_ctx(query, &user_agent)?).await?;
            let code = status.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
            Ok(respond(code.and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::CREATED), &status, out))
        }
        ("get" | "create", Some(sub @ ("log" | "exec" | "attach" | "portforward")))
            if def.group.is_empty() && def.resource == "pods" =>
        {
            crate::nodeproxy::forward(app, ns.unwrap_or_default(), name, sub, query, req).await
        }
        (verb, Some(sub)) => Err(ApiError::method_not_allowed(verb, &format!("{}/{sub}", def.resource))),
        (verb, None) => Err(ApiError::method_not_allowed(verb, &def.resource)),
    }
}

/// `DeleteOptions` from the body (if any) and the query.
async fn delete_options(req: Request, query: &Query) -> Result<DeleteOpts, ApiError> {
    let (headers, body) = read_body(req).await?;
    let body: Value =
        if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { codec::decode_body(&headers, &body)? };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let dry_run =
        query.dry_run()? || body.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "All"));
    let propagation =
        query.get("propagationPolicy").map(str::to_owned).or_else(|| text("propagationPolicy")).or_else(|| {
            // The deprecated orphanDependents=true means propagationPolicy=Orphan.
            (query.flag("orphanDependents") || body.get("orphanDependents") == Some(&json!(true)))
                .then(|| "Orphan".to_owned())
        });
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![rkube_apimachinery::Cause::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        ));
    }
    Ok(DeleteOpts {
        grace_period_seconds: query
            .int("gracePeriodSeconds")?
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64)),
        propagation_policy: propagation,
        precondition_uid: body.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned),
        precondition_rv: body.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_owned),
        dry_run,
    })
}
