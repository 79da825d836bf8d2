//! The resources this server serves right now: the built-in catalogue plus custom resources as CRDs come and go.

use std::sync::{Arc, RwLock};

use rkube_apimachinery::catalogue::BUILTIN;

use crate::resource::ResourceDef;

/// The served resources; cheap to read, rarely written.
pub struct Catalog {
    defs: RwLock<Vec<Arc<ResourceDef>>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog { defs: RwLock::new(BUILTIN.iter().map(ResourceDef::builtin).collect()) }
    }
}

impl Catalog {
    /// Every served resource.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One resource by group, version and plural name.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|d| d.group == group && d.version == version && d.resource == resource)
            .cloned()
    }

    /// The groups with the versions served for each, in discovery order (core group first, as "").
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for d in self.all() {
            match out.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, versions)) => {
                    if !versions.contains(&d.version) {
                        versions.push(d.version.clone());
                    }
                }
                None => out.push((d.group.clone(), vec![d.version.clone()])),
            }
        }
        out
    }

    /// Replaces the custom resources of one group/resource (CRD create, update, delete).
    pub fn set_custom(&self, group: &str, resource: &str, defs: Vec<Arc<ResourceDef>>) {
        let mut all = self.defs.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|d| !(d.group == group && d.resource == resource));
        all.extend(defs);
    }
}
