//! Finding or creating a Deployment's new ReplicaSet and keeping revisions in step (upstream's
//! `getAllReplicaSetsAndSyncRevision` and `getNewReplicaSet`).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::Controller;
use super::history::{self, HASH_LABEL};
use super::progress::{self, FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING};
use super::surge::{desired, max_surge, new_rs_new_replicas};
use rkube_client::api::{is_already_exists, is_namespace_terminating};
use rkube_client::events::EventType;
use rkube_client::pods::{controller_ref, is_controlled_by};
use rkube_client::{Error, Result};

impl Controller {
    /// The new ReplicaSet (created when `create` and missing) and all the others; `rs_list` is kept in step
    /// with what was written.
    pub(super) async fn get_all(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let new_idx = history::find_new(d, rs_list);
        let old: Vec<ReplicaSet> =
            rs_list.iter().enumerate().filter(|(i, _)| Some(*i) != new_idx).map(|(_, rs)| rs.clone()).collect();
        let new_revision = history::max_revision(&old) + 1;
        let new_rs = match new_idx {
            Some(i) => Some(self.sync_existing_new(d, &mut rs_list[i], new_revision).await?),
            None if create => {
                let created = self.create_new(d, &old, new_revision).await?;
                if let Some(rs) = &created {
                    rs_list.push(rs.clone());
                }
                created
            }
            None => None,
        };
        Ok((new_rs, old))
    }

    async fn sync_existing_new(
        &self,
        d: &mut Deployment,
        rs: &mut ReplicaSet,
        new_revision: i64,
    ) -> Result<ReplicaSet> {
        let mut copy = rs.clone();
        let replicas = (desired(d), desired(d) + max_surge(d));
        let annotations_changed = history::set_new_rs_annotations(d, &mut copy, new_revision, true, replicas);
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
        let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
        if annotations_changed || min_ready_changed {
            spec.min_ready_seconds = min_ready;
            *rs = self.update_rs(&copy).await?;
            return Ok(rs.clone());
        }
        let rev = history::revision(rs).to_string();
        self.write_revision(d, &rev).await?;
        let has_progressing = d.status.as_ref().and_then(|s| progress::get(s, PROGRESSING)).is_some();
        if progress::progress_deadline(d).is_some() && !has_progressing {
            let msg = format!("Found new replica set \"{}\"", rs.name_any());
            let mut status = d.status.clone().unwrap_or_default();
            progress::set(&mut status, progress::condition(PROGRESSING, "True", FOUND_NEW_RS, msg, now()));
            self.write_status(d, status).await?;
        }
        Ok(rs.clone())
    }

    async fn create_new(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<Option<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let Some(spec) = d.spec.clone() else { return Ok(None) };
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = history::compute_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.to_owned(), hash.clone());
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(Default::default).insert(HASH_LABEL.to_owned(), hash.clone());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![controller_ref(d)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&new_rs);
        let replicas = new_rs_new_replicas(d, &all, &new_rs);
        if let Some(s) = new_rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        history::set_new_rs_annotations(d, &mut new_rs, new_revision, false, (desired(d), desired(d) + max_surge(d)));
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let name = new_rs.name_any();
        let created = match api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(e) if is_already_exists(&e) => return self.adopt_existing_or_collide(d, &api, &name, e).await,
            Err(e) if is_namespace_terminating(&e) => {
                return Err(Error::api(format!("creating replica set {ns}/{name}"), e));
            }
            Err(e) => {
                let err = Error::api(format!("creating replica set {ns}/{name}"), e);
                let msg = format!("Failed to create new replica set \"{name}\": {}", crate::replicaset::message(&err));
                if progress::progress_deadline(d).is_some() {
                    let mut status = d.status.clone().unwrap_or_default();
                    progress::set(
                        &mut status,
                        progress::condition(PROGRESSING, "False", FAILED_RS_CREATE, msg.clone(), now()),
                    );
                    // The creation failure is the error that matters.
                    let _ = self.write_status(d, status).await;
                }
                self.recorder.record(d, EventType::Warning, FAILED_RS_CREATE, &msg).await;
                return Err(err);
            }
        };
        if replicas > 0 {
            let msg = format!("Scaled up replica set {name} to {replicas} from 0");
            self.recorder.record(d, EventType::Normal, "ScalingReplicaSet", &msg).await;
        }
        self.write_revision(d, &new_revision.to_string()).await?;
        if progress::progress_deadline(d).is_some() {
            let msg = format!("Created new replica set \"{name}\"");
            let mut status = d.status.clone().unwrap_or_default();
            progress::set(&mut status, progress::condition(PROGRESSING, "True", NEW_RS_CREATED, msg, now()));
            self.write_status(d, status).await?;
        }
        Ok(Some(created))
    }

    /// The name is taken: it is our new ReplicaSet (a stale cache), or a hash collision, which bumps
    /// `status.collisionCount` so the next try hashes differently.
    async fn adopt_existing_or_collide(
        &self,
        d: &mut Deployment,
        api: &Api<ReplicaSet>,
        name: &str,
        original: kube::Error,
    ) -> Result<Option<ReplicaSet>> {
        let ns = d.namespace().unwrap_or_default();
        let existing = api.get(name).await.map_err(|e| Error::api(format!("reading replica set {ns}/{name}"), e))?;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let same_template = match (d.spec.as_ref(), existing.spec.as_ref().and_then(|s| s.template.as_ref())) {
            (Some(spec), Some(t)) => history::equal_ignore_hash(&spec.template, t),
            _ => false,
        };
        if is_controlled_by(&existing.metadata, &uid) && same_template {
            return Ok(Some(existing));
        }
        let mut status = d.status.clone().unwrap_or_default();
        status.collision_count = Some(status.collision_count.unwrap_or(0).saturating_add(1));
        self.write_status(d, status).await?;
        Err(Error::api(format!("creating replica set {ns}/{name} (hash collision)"), original))
    }

    /// Writes the Deployment's revision annotation when it differs (metadata only: no new generation).
    pub(super) async fn write_revision(&self, d: &mut Deployment, revision: &str) -> Result<()> {
        if !history::set_deployment_revision(d, revision) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {history::REVISION: revision}}});
        api.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api(format!("setting the revision of deployment {}", crate::key::name_of(d)), e))?;
        Ok(())
    }

    /// Replaces a ReplicaSet (optimistic concurrency on its resourceVersion).
    pub(super) async fn update_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &rs.namespace().unwrap_or_default());
        api.replace(&rs.name_any(), &PostParams::default(), rs)
            .await
            .map_err(|e| Error::api(format!("updating replica set {}", crate::key::name_of(rs)), e))
    }
}

/// The current time.
pub(super) fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}
