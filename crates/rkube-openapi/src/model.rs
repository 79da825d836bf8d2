//! The served API as one model: definitions plus resources, from which both documents are rendered.

use std::collections::BTreeSet;

use rkube_apimachinery::catalogue::{BUILTIN, ResourceInfo};

use crate::defs::{self, Definitions, Wanted};
use crate::gvk::Gvk;
use crate::ops::{self, PathItem, Payload, ResourceDesc};

/// Definitions and resources of everything served.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// All definitions, Swagger 2.0 form.
    pub(crate) defs: Definitions,
    /// All resources.
    pub(crate) resources: Vec<ResourceDesc>,
}

/// The kind a subresource's body has, when it is not the resource's own kind.
fn subresource_gvk(sub: &str) -> Option<Gvk> {
    match sub {
        "scale" => Some(Gvk::new("autoscaling", "v1", "Scale")),
        "binding" => Some(Gvk::new("", "v1", "Binding")),
        "eviction" => Some(Gvk::new("policy", "v1", "Eviction")),
        "token" => Some(Gvk::new("authentication.k8s.io", "v1", "TokenRequest")),
        _ => None,
    }
}

fn to_strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Model {
    /// The model of the catalogue's built-in resources.
    pub(crate) fn builtin() -> Self {
        Self::from_catalogue(BUILTIN)
    }

    /// The model of a set of built-in resources (kinds without a k8s-openapi type are left out).
    pub(crate) fn from_catalogue(catalogue: &[ResourceInfo]) -> Self {
        let mut wanted: Vec<Wanted> = Vec::new();
        let mut want = |gvk: Gvk, listable: bool| match wanted.iter_mut().find(|w| w.gvk == gvk) {
            Some(w) => w.listable |= listable,
            None => wanted.push(Wanted { gvk, listable }),
        };
        for r in catalogue {
            want(Gvk::new(r.group, r.version, r.kind), r.verbs.contains(&"list"));
            for sub in r.subresources {
                if let Some(gvk) = subresource_gvk(sub) {
                    want(gvk, false);
                }
            }
        }
        let mut defs = defs::build(&wanted);
        let resources: Vec<ResourceDesc> = catalogue
            .iter()
            .filter_map(|r| {
                let gvk = Gvk::new(r.group, r.version, r.kind);
                let definition = defs.kinds.get(&gvk)?.clone();
                let list_gvk = Gvk::new(r.group, r.version, &format!("{}List", r.kind));
                Some(ResourceDesc {
                    gvk,
                    plural: r.resource.to_owned(),
                    namespaced: r.namespaced,
                    verbs: to_strings(r.verbs),
                    subresources: to_strings(r.subresources),
                    definition,
                    list_definition: defs.kinds.get(&list_gvk).cloned(),
                    builtin: true,
                })
            })
            .collect();
        let mut model = Self { defs: Definitions::default(), resources };
        defs::mark_shared_meta(&mut defs.schemas, &model.group_versions());
        model.defs = defs;
        model
    }

    /// Served group-versions, core first, then in the order resources were added.
    pub(crate) fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.resources {
            let gv = (r.gvk.group.clone(), r.gvk.version.clone());
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out.sort_by_key(|(g, _)| !g.is_empty());
        out
    }

    /// The paths of one group-version (its discovery path first).
    pub(crate) fn gv_paths(&self, group: &str, version: &str) -> Vec<PathItem> {
        let mut paths = vec![ops::discovery_path(group, version)];
        let sub_definition = |gvk: &Gvk| self.defs.kinds.get(gvk).cloned();
        for r in self.resources.iter().filter(|r| r.gvk.group == group && r.gvk.version == version) {
            paths.extend(ops::resource_paths(r, &sub_definition));
        }
        paths
    }

    /// The paths of every group-version.
    pub(crate) fn all_paths(&self) -> Vec<PathItem> {
        self.group_versions().iter().flat_map(|(g, v)| self.gv_paths(g, v)).collect()
    }
}

/// The definitions that operations on `paths` name directly (bodies and responses).
pub(crate) fn referenced(paths: &[PathItem]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for op in paths.iter().flat_map(|p| &p.ops) {
        if let Some(b) = &op.body {
            out.insert(b.definition.clone());
        }
        for (_, payload) in &op.responses {
            if let Payload::Definition(d) = payload {
                out.insert(d.clone());
            }
        }
    }
    out
}
