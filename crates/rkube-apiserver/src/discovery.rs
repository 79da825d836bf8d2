//! Legacy discovery documents: `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::catalog::Catalog;

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v })).collect();
    json!({ "name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null) })
}

/// Answers a discovery path.
pub(crate) fn answer(
    catalog: &Catalog,
    group: Option<&str>,
    version: Option<&str>,
    legacy: bool,
    server_address: &str,
) -> Result<Value, ApiError> {
    match (legacy, group, version) {
        (true, None, None) => Ok(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
        })),
        (true, None, Some("v1")) => Ok(resource_list(catalog, "", "v1")),
        (false, None, None) => {
            let groups: Vec<Value> =
                catalog.groups().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_doc(&g, &vs)).collect();
            Ok(json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }))
        }
        (false, Some(g), None) => catalog
            .groups()
            .into_iter()
            .find(|(name, _)| name == g)
            .map(|(name, vs)| {
                let mut doc = group_doc(&name, &vs);
                doc["kind"] = json!("APIGroup");
                doc["apiVersion"] = json!("v1");
                doc
            })
            .ok_or_else(ApiError::no_such_resource),
        (false, Some(g), Some(v)) => {
            if catalog.groups().iter().any(|(name, vs)| name == g && vs.iter().any(|x| x == v)) {
                Ok(resource_list(catalog, g, v))
            } else {
                Err(ApiError::no_such_resource())
            }
        }
        _ => Err(ApiError::no_such_resource()),
    }
}

/// A subresource's verbs, response kind and (group, version) as discovery reports them.
fn subresource_info(d: &crate::resource::ResourceDef, sub: &str) -> (Vec<&'static str>, String, String, String) {
    let (verbs, kind) = match rkube_apimachinery::catalogue::builtin(&d.group, &d.version, &d.resource) {
        Some(b) => (b.subresource_verbs(sub).to_vec(), b.subresource_kind(sub).to_owned()),
        None => (vec!["get", "patch", "update"], if sub == "scale" { "Scale".to_owned() } else { d.kind.clone() }),
    };
    // Scale and Eviction bodies belong to other groups; kubectl drain finds policy/v1 evictions this way.
    let (g, v) = match sub {
        "scale" => ("autoscaling".to_owned(), "v1".to_owned()),
        "eviction" => ("policy".to_owned(), "v1".to_owned()),
        _ => (d.group.clone(), d.version.clone()),
    };
    (verbs, kind, g, v)
}

fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for d in catalog.all().iter().filter(|d| d.group == group && d.version == version) {
        let mut r = json!({
            "name": d.resource,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": d.verbs,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        for sub in &d.subresources {
            let (verbs, kind, g, v) = subresource_info(d, sub);
            let mut s = json!({
                "name": format!("{}/{sub}", d.resource),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if sub == "scale" || sub == "eviction" {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources })
}

/// The aggregated discovery version a client asked for in `Accept`, if any (`v2` or `v2beta1`).
pub(crate) fn aggregated_version(headers: &http::HeaderMap) -> Option<&'static str> {
    let accept = headers.get(http::header::ACCEPT)?.to_str().ok()?;
    // The first acceptable entry wins, in the client's order.
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let is = |p: &str| params.contains(&p);
        if params.first() == Some(&"application/json") && is("g=apidiscovery.k8s.io") && is("as=APIGroupDiscoveryList")
        {
            if is("v=v2") {
                return Some("v2");
            }
            if is("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params.first() == Some(&"application/json") && params.len() == 1 {
            return None;
        }
    }
    None
}

/// The aggregated discovery document for `/api` (core group only) or `/apis` (every other group).
pub(crate) fn aggregated(catalog: &Catalog, legacy: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in catalog.groups() {
        if group.is_empty() != legacy {
            continue;
        }
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = catalog
                    .all()
                    .iter()
                    .filter(|d| d.group == group && &d.version == v)
                    .map(|d| {
                        let subs: Vec<Value> = d
                            .subresources
                            .iter()
                            .map(|sub| {
                                let (verbs, kind, g, ver) = subresource_info(d, sub);
                                json!({ "subresource": sub, "responseKind": { "group": g, "version": ver, "kind": kind }, "verbs": verbs })
                            })
                            .collect();
                        let mut r = json!({
                            "resource": d.resource,
                            "responseKind": { "group": d.group, "version": d.version, "kind": d.kind },
                            "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": d.singular,
                            "verbs": d.verbs,
                        });
                        if !d.short_names.is_empty() {
                            r["shortNames"] = json!(d.short_names);
                        }
                        if !d.categories.is_empty() {
                            r["categories"] = json!(d.categories);
                        }
                        if !subs.is_empty() {
                            r["subresources"] = json!(subs);
                        }
                        r
                    })
                    .collect();
                json!({ "version": v, "resources": resources, "freshness": "Current" })
            })
            .collect();
        items.push(json!({ "metadata": { "name": group, "creationTimestamp": null }, "versions": vs }));
    }
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items })
}
