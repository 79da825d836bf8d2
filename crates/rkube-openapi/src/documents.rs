//! The documents of a running server: the built-ins plus the custom resources added at run time.
//!
//! Built-in group-version documents are shared with the process-wide cache and never re-rendered, so
//! their hashes (and clients' caches) survive CRD changes. Documents are re-rendered lazily, on the
//! first read after a change, so adding many CRDs at start costs one render.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::gvk::{Gvk, gv_path, parse_gv_path};
use crate::published::{Published, V2Protobuf};
use crate::validate::{Mode, Walker};
use crate::{custom::CustomResource, defs, v2, v3};

/// The rendered documents.
#[derive(Debug)]
struct Rendered {
    v2: Arc<Published>,
    /// `v2` as protobuf, encoded on first request: most clients never ask for it.
    v2_protobuf: OnceLock<Arc<V2Protobuf>>,
    v3: BTreeMap<String, Arc<Published>>,
}

/// Built-in and custom resources' OpenAPI documents. Mutate through `&mut` (behind a lock or by
/// copy-on-write of a clone); reads take `&self` and render on first use after a change.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    /// Custom resources by (group, version, plural).
    custom: BTreeMap<(String, String, String), CustomResource>,
    /// Custom kinds' definitions (Swagger 2.0 form), for validation.
    custom_defs: BTreeMap<Gvk, Value>,
    rendered: OnceLock<Arc<Rendered>>,
}

impl Documents {
    /// The built-in documents only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one custom resource version.
    pub fn add_custom(&mut self, cr: CustomResource) -> Result<()> {
        if rkube_apimachinery::catalogue::builtin(&cr.group, &cr.version, &cr.plural).is_some() {
            return Err(Error::BuiltinConflict { group: cr.group, version: cr.version, plural: cr.plural });
        }
        let definition = cr.definition()?;
        self.custom_defs.insert(cr.gvk(), definition);
        self.custom.insert((cr.group.clone(), cr.version.clone(), cr.plural.clone()), cr);
        self.rendered = OnceLock::new();
        Ok(())
    }

    /// Removes one custom resource version; false if it was not there.
    pub fn remove_custom(&mut self, group: &str, version: &str, plural: &str) -> bool {
        let Some(cr) = self.custom.remove(&(group.to_owned(), version.to_owned(), plural.to_owned())) else {
            return false;
        };
        self.custom_defs.remove(&cr.gvk());
        self.rendered = OnceLock::new();
        true
    }

    /// Publishes the served versions of a CustomResourceDefinition (JSON of an `apiextensions.k8s.io/v1`
    /// object), replacing whatever an earlier form of it published.
    pub fn apply_crd(&mut self, crd: &Value) -> Result<()> {
        let crs = CustomResource::from_crd(crd)?;
        // Check every version before changing anything, so a bad CRD leaves the documents as they were.
        for cr in &crs {
            cr.definition()?;
            if rkube_apimachinery::catalogue::builtin(&cr.group, &cr.version, &cr.plural).is_some() {
                return Err(Error::BuiltinConflict {
                    group: cr.group.clone(),
                    version: cr.version.clone(),
                    plural: cr.plural.clone(),
                });
            }
        }
        if let Some(first) = crs.first() {
            let (group, plural) = (first.group.clone(), first.plural.clone());
            self.remove_crd(&group, &plural);
        }
        for cr in crs {
            self.add_custom(cr)?;
        }
        Ok(())
    }

    /// Removes every version of a custom resource; false if none was there.
    pub fn remove_crd(&mut self, group: &str, plural: &str) -> bool {
        let versions: Vec<String> =
            self.custom.keys().filter(|(g, _, p)| g == group && p == plural).map(|(_, v, _)| v.clone()).collect();
        versions.iter().fold(false, |any, v| self.remove_custom(group, v, plural) | any)
    }

    /// The custom resources published.
    pub fn custom_resources(&self) -> impl Iterator<Item = &CustomResource> {
        self.custom.values()
    }

    fn rendered(&self) -> &Arc<Rendered> {
        self.rendered.get_or_init(|| Arc::new(self.render()))
    }

    fn render(&self) -> Rendered {
        let builtin_v3 = crate::builtin_v3();
        if self.custom.is_empty() {
            return Rendered { v2: crate::builtin_v2(), v2_protobuf: OnceLock::new(), v3: builtin_v3.clone() };
        }
        let mut model = crate::builtin_model().clone();
        for cr in self.custom.values() {
            // Definitions were checked when the resource was added.
            let _ = model.add_custom(cr);
        }
        let gvs = model.group_versions();
        defs::mark_shared_meta(&mut model.defs.schemas, &gvs);
        let mut docs = builtin_v3.clone();
        let custom_gvs: std::collections::BTreeSet<(String, String)> =
            self.custom.keys().map(|(g, v, _)| (g.clone(), v.clone())).collect();
        for (g, v) in custom_gvs {
            docs.insert(gv_path(&g, &v), Arc::new(Published::new(v3::render_gv(&model, &g, &v))));
        }
        Rendered { v2: Arc::new(Published::new(v2::render(&model))), v2_protobuf: OnceLock::new(), v3: docs }
    }

    /// The Swagger 2.0 document (`GET /openapi/v2`).
    pub fn v2(&self) -> Arc<Published> {
        self.rendered().v2.clone()
    }

    /// The Swagger 2.0 document as gnostic protobuf (`GET /openapi/v2` asking for
    /// [`V2Protobuf::CONTENT_TYPE`]).
    pub fn v2_protobuf(&self) -> Arc<V2Protobuf> {
        let rendered = self.rendered();
        rendered
            .v2_protobuf
            .get_or_init(|| {
                // Without custom resources this is the built-in document: share its process-wide encoding.
                if Arc::ptr_eq(&rendered.v2, &crate::builtin_v2()) {
                    crate::builtin_v2_protobuf()
                } else {
                    Arc::new(V2Protobuf::encode(rendered.v2.value()))
                }
            })
            .clone()
    }

    /// The OpenAPI v3 index (`GET /openapi/v3`).
    pub fn v3_index(&self) -> Value {
        v3::index(self.rendered().v3.iter().map(|(k, v)| (k, &**v)))
    }

    /// The OpenAPI v3 document of a group-version (`api/v1`, `apis/apps/v1`), if served.
    pub fn v3_group_version(&self, path: &str) -> Option<Arc<Published>> {
        let (g, v) = parse_gv_path(path)?;
        self.rendered().v3.get(&gv_path(&g, &v)).cloned()
    }

    /// The unknown fields of an object (see [`crate::unknown_fields`]), custom kinds included.
    pub fn unknown_fields(&self, api_version: &str, kind: &str, obj: &Value) -> Vec<String> {
        let gvk = Gvk::from_api_version(api_version, kind);
        match self.custom_defs.get(&gvk) {
            Some(schema) => {
                Walker::new(&crate::builtin_model().defs.schemas).unknown_fields(schema, obj, Mode::Structural)
            }
            None => crate::unknown_fields(api_version, kind, obj),
        }
    }
}
