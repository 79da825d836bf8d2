//! Tests of the documents and of validation against what kubectl and upstream expect.

use serde_json::{Value, json};

use super::*;

/// Every `$ref` in `v`, as written.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// Asserts that every reference of a v3 document names one of its own schemas.
fn assert_self_contained(doc: &Value) {
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("foreign ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "dangling {r}");
    }
}

#[test]
fn v2_has_kinds_descriptions_parameters_and_patch_metadata() {
    let doc = v2();
    assert_eq!(doc["swagger"], "2.0");
    let defs = &doc["definitions"];
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(defs["io.k8s.api.core.v1.Pod"].get("required").is_none(), "upstream does not require metadata");
    assert!(
        defs["io.k8s.api.core.v1.Container"]["properties"]["image"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert!(defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
    assert_eq!(
        defs["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );

    let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"], "atomic");
    assert_eq!(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"], "int-or-string");

    let pods = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let names: Vec<&str> =
        pods["patch"]["parameters"].as_array().expect("params").iter().filter_map(|p| p["name"].as_str()).collect();
    for p in ["fieldValidation", "dryRun", "fieldManager", "force"] {
        assert!(names.contains(&p), "{p} in {names:?}");
    }
    assert_eq!(pods["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(pods["patch"]["x-kubernetes-group-version-kind"], json!({"group": "", "kind": "Pod", "version": "v1"}));
    for (method, action) in [("get", "get"), ("put", "put"), ("delete", "delete")] {
        assert_eq!(pods[method]["x-kubernetes-action"], action);
    }
    let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    for (method, action) in [("get", "list"), ("post", "post"), ("delete", "deletecollection")] {
        assert_eq!(collection[method]["x-kubernetes-action"], action);
    }
    assert!(doc["paths"]["/api/v1/pods"]["get"].is_object(), "list across namespaces");
    assert!(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"].is_object());
    assert!(doc["paths"]["/api/v1/namespaces"]["delete"].is_null(), "namespaces have no deletecollection");

    let mut all = Vec::new();
    refs(doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/definitions/").expect("v2 ref");
        assert!(defs.get(name).is_some(), "dangling {r}");
    }
    let doc = v2_document();
    assert_eq!(serde_json::from_slice::<Value>(doc.bytes()).expect("json"), *doc.value());
}

#[test]
fn every_catalogue_kind_is_published() {
    for r in rkube_apimachinery::catalogue::BUILTIN {
        let name = builtin_model().defs.kinds.get(&Gvk::new(r.group, r.version, r.kind));
        assert!(name.is_some_and(|n| v2()["definitions"].get(n).is_some()), "{}/{} {}", r.group, r.version, r.kind);
        let doc = v3_group_version(&gv_path(r.group, r.version)).expect("group-version document");
        let prefix =
            if r.group.is_empty() { format!("/api/{}", r.version) } else { format!("/apis/{}/{}", r.group, r.version) };
        assert!(
            doc["paths"]
                .as_object()
                .expect("paths")
                .keys()
                .any(|p| p.starts_with(&prefix) && p.contains(&format!("/{}", r.resource))),
            "{} has no path",
            r.resource
        );
    }
}

#[test]
fn v3_index_and_self_contained_group_versions() {
    let index = v3_index();
    let paths = index["paths"].as_object().expect("paths");
    for gv in ["api/v1", "apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"] {
        let url = paths[gv]["serverRelativeURL"].as_str().expect("url");
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
    }
    let apps = v3_group_version("apis/apps/v1").expect("apps/v1");
    assert_eq!(apps["openapi"], "3.0.0");
    let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert_eq!(
        deployment["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(apps["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
    assert_eq!(
        apps["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"][0]["type"],
        "integer"
    );
    assert!(v3_group_version("/apis/apps/v1").is_some());
    assert!(v3_group_version("apis/nope/v1").is_none());
    for gv in paths.keys() {
        let doc = v3_group_version_document(gv).expect("document");
        assert_self_contained(doc.value());
        assert!(paths[gv]["serverRelativeURL"].as_str().is_some_and(|u| u.ends_with(doc.hash())));
        // kubectl's QueryParamVerifier decides from any PATCH operation of a kind: all must carry it.
        for item in doc.value()["paths"].as_object().expect("paths").values() {
            if let Some(patch) = item.get("patch").filter(|p| p["x-kubernetes-action"] == "patch") {
                let has = patch["parameters"]
                    .as_array()
                    .expect("params")
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query");
                assert!(has, "{}", patch["operationId"]);
            }
        }
    }
}

#[test]
fn unknown_fields_of_built_ins() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any-key": "x"}, "annotations": {"a/b": "c"}},
        "spec": {
            "replicass": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "ok", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": 1024}}},
                    {"name": "web", "imagee": "nginx", "ports": [{"containerPort": 80, "protocool": "TCP"}]},
                ]},
            },
        },
    });
    assert_eq!(
        unknown_fields("apps/v1", "Deployment", &deployment),
        vec![
            "spec.replicass".to_owned(),
            "spec.template.spec.containers[1].imagee".to_owned(),
            "spec.template.spec.containers[1].ports[0].protocool".to_owned(),
        ]
    );

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"anything": "x", "b.c": "y"}});
    assert!(unknown_fields("v1", "ConfigMap", &cm).is_empty());

    let top = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labelz": {}}, "extra": 1});
    let mut found = unknown_fields("v1", "ConfigMap", &top);
    found.sort();
    assert_eq!(found, vec!["extra".to_owned(), "metadata.labelz".to_owned()]);

    // Opaque content (RawExtension, FieldsV1) is not judged, as Go keeps it raw.
    let managed = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}, "manager": "m"}]}});
    assert!(unknown_fields("v1", "Pod", &managed).is_empty());
    assert!(unknown_fields("example.com/v1", "Nope", &json!({"x": 1})).is_empty());

    let mut paths = unknown_fields("apps/v1", "Deployment", &json!({"spec": {"foo": 1, "bar": 2}}));
    paths.sort();
    let msg = strict_decoding_error(&paths);
    assert_eq!(msg.as_deref(), Some(r#"strict decoding error: unknown field "spec.bar", unknown field "spec.foo""#));
}

fn crontab_crd(versions: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"kind": "CronTab", "plural": "crontabs", "singular": "crontab", "listKind": "CronTabList"},
            "versions": versions,
        },
    })
}

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "cronSpec": {"type": "string", "description": "When to run."},
                    "replicas": {"type": "integer"},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port"],
                        "items": {"type": "object", "properties": {"port": {"type": "integer"}}},
                    },
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "empty": {"type": "object"},
                    "size": {"x-kubernetes-int-or-string": true},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "child": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    })
}

#[test]
fn custom_resources_are_published_validated_and_removed() {
    let mut docs = Documents::new();
    let before = docs.v2();
    assert!(std::ptr::eq(before.value(), v2()), "without custom resources the built-in document is shared");
    let apps_hash = docs.v3_group_version("apis/apps/v1").expect("apps").hash().to_owned();

    let crd = crontab_crd(json!([
        {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
         "schema": {"openAPIV3Schema": crontab_schema()}},
        {"name": "v1beta1", "served": true, "storage": false},
    ]));
    docs.apply_crd(&crd).expect("apply");
    assert_eq!(docs.custom_resources().count(), 2);

    let index = docs.v3_index();
    let url = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].as_str().expect("custom gv in index");
    assert!(url.starts_with("/openapi/v3/apis/stable.example.com/v1?hash="));
    assert!(index["paths"]["apis/stable.example.com/v1beta1"].is_object());
    assert_eq!(docs.v3_group_version("apis/apps/v1").expect("apps").hash(), apps_hash, "built-in documents untouched");

    let doc = docs.v3_group_version("apis/stable.example.com/v1").expect("custom doc");
    let doc = doc.value();
    assert_self_contained(doc);
    let schema = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    assert_eq!(
        schema["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(schema["properties"]["spec"]["properties"]["ports"]["x-kubernetes-list-map-keys"], json!(["port"]));
    assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTabList"].is_object());
    let item = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
    assert!(item["patch"]["parameters"].as_array().expect("params").iter().any(|p| p["name"] == "fieldValidation"));
    assert_eq!(item["patch"]["x-kubernetes-group-version-kind"]["kind"], "CronTab");
    assert!(item["patch"]["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
    assert!(
        doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"]["put"].is_object()
    );
    assert!(
        doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]["get"].is_object()
    );
    assert!(doc["paths"]["/apis/stable.example.com/v1/crontabs"]["get"].is_object());

    let v2 = docs.v2();
    assert!(v2.value()["definitions"]["com.example.stable.v1.CronTab"].is_object());
    assert!(v2.value()["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    assert_ne!(v2.hash(), before.hash());

    let obj = json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "a", "labels": {"x": "y"}, "bogus": 1},
        "spec": {
            "cronSpec": "* * * * *",
            "cronSpek": "typo",
            "ports": [{"port": 1, "name": "p"}],
            "config": {"anything": {"goes": true}},
            "tags": {"free": "form"},
            "empty": {"dropped": 1},
            "size": "50%",
            "template": {"apiVersion": "v1", "kind": "Pod", "spec": {"whatever": 1}},
            "child": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "nope": 1}, "spec": {"x": 1}, "other": 1},
        },
        "status": {"ready": true, "phase": "x"},
    });
    let mut found = docs.unknown_fields("stable.example.com/v1", "CronTab", &obj);
    found.sort();
    assert_eq!(
        found,
        [
            "metadata.bogus",
            "spec.child.metadata.nope",
            "spec.child.other",
            "spec.cronSpek",
            "spec.empty.dropped",
            "spec.ports[0].name",
            "status.phase",
        ]
    );
    // No schema: everything is kept.
    assert!(docs.unknown_fields("stable.example.com/v1beta1", "CronTab", &json!({"spec": {"a": 1}})).is_empty());
    // Built-ins still judged through the same entry point.
    assert_eq!(docs.unknown_fields("v1", "ConfigMap", &json!({"x": 1})), ["x"]);

    assert!(docs.remove_crd("stable.example.com", "crontabs"));
    assert!(docs.v3_index()["paths"].get("apis/stable.example.com/v1").is_none());
    assert!(docs.v3_group_version("apis/stable.example.com/v1").is_none());
    assert_eq!(docs.v2().hash(), before.hash());
    assert!(!docs.remove_crd("stable.example.com", "crontabs"));
}

#[test]
fn custom_resources_cannot_shadow_built_ins() {
    let mut docs = Documents::new();
    let cr = CustomResource::new("apps", "v1", "Deployment", "deployments", true, json!({"type": "object"}));
    assert!(matches!(docs.add_custom(cr), Err(Error::BuiltinConflict { .. })));
    let bad = CustomResource::new("x.io", "v1", "X", "xs", true, json!("not an object"));
    assert!(matches!(docs.add_custom(bad), Err(Error::InvalidSchema { .. })));
    assert!(docs.custom_resources().next().is_none());
}

/// Prints what building the documents costs (`cargo test -p rkube-openapi build_cost -- --nocapture`).
/// Numbers are reported, never asserted.
#[test]
fn build_cost() {
    let start = std::time::Instant::now();
    let model = Model::builtin();
    let generated = start.elapsed();
    let v2 = Published::new(v2::render(&model));
    let with_v2 = start.elapsed();
    let v2_protobuf = crate::V2Protobuf::encode(v2.value());
    let with_v2_protobuf = start.elapsed();
    let v3 = v3::render_all(&model);
    let with_v3 = start.elapsed();
    let v3_bytes: usize = v3.values().map(|d| d.bytes().len()).sum();
    let largest = v3.iter().max_by_key(|(_, d)| d.bytes().len()).map(|(k, d)| format!("{k} {} B", d.bytes().len()));
    eprintln!(
        "schemas generated in {generated:?} ({} definitions); v2: {} B, rendered and hashed in {:?}; \
         v2 protobuf: {} B, encoded and hashed in {:?}; v3: {} documents, {v3_bytes} B, in {:?}; largest {}",
        model.defs.schemas.len(),
        v2.bytes().len(),
        with_v2 - generated,
        v2_protobuf.bytes().len(),
        with_v2_protobuf - with_v2,
        v3.len(),
        with_v3 - with_v2_protobuf,
        largest.unwrap_or_default(),
    );
    assert!(!v2.bytes().is_empty() && !v2_protobuf.bytes().is_empty() && !v3.is_empty());
}
