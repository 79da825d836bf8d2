//! The garbage collector's dependency graph, kept from the monitors' events (upstream's GraphBuilder):
//! a node per object uid with its owner references, the reverse edges (owner → dependents), and
//! "virtual" nodes for owners referenced but not (yet) seen. Applying a change returns the work it calls
//! for; the graph itself does no IO, so it is tested alone.

use std::collections::{HashMap, HashSet};

/// An object's uid.
pub(crate) type Uid = String;

/// The `foregroundDeletion` finalizer: delete dependents first.
pub(crate) const FOREGROUND: &str = "foregroundDeletion";
/// The `orphan` finalizer: strip the owner reference from dependents first.
pub(crate) const ORPHAN: &str = "orphan";

/// Where an object is: enough to GET it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// `apps/v1`, `v1`.
    pub(crate) api_version: String,
    /// `Deployment`.
    pub(crate) kind: String,
    /// The namespace (for virtual nodes: the dependent's, used only if the kind is namespaced).
    pub(crate) namespace: Option<String>,
    /// The name.
    pub(crate) name: String,
    /// The uid.
    pub(crate) uid: Uid,
}

/// One owner reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnerRef {
    /// The owner's `apiVersion`.
    pub(crate) api_version: String,
    /// The owner's kind.
    pub(crate) kind: String,
    /// The owner's name.
    pub(crate) name: String,
    /// The owner's uid.
    pub(crate) uid: Uid,
    /// `blockOwnerDeletion`: a foreground deletion of the owner waits for this dependent.
    pub(crate) block: bool,
}

/// What a monitor saw of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Where it is.
    pub(crate) identity: Identity,
    /// Its owner references.
    pub(crate) owners: Vec<OwnerRef>,
    /// Whether it has a deletionTimestamp.
    pub(crate) deleting: bool,
    /// Its finalizers.
    pub(crate) finalizers: Vec<String>,
}

/// A change to apply.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// Added or updated.
    Upsert(Seen),
    /// Deleted (observed by a watch).
    Delete(Identity),
    /// A monitor listed its resource anew: nodes of that kind not in `uids` are gone.
    Relisted {
        /// The monitor's `apiVersion`.
        api_version: String,
        /// The monitor's kind.
        kind: String,
        /// Every uid the list returned.
        uids: HashSet<Uid>,
    },
    /// A worker found the object absent (404 or another uid) with a live GET.
    Absent(Identity),
}

/// What the workers are asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Work {
    /// Decide whether the object goes (its owners are gone), or, for an owner deleted in the foreground,
    /// whether its blocking dependents are gone.
    Delete(Uid),
    /// Strip the owner's references from its dependents, then remove its `orphan` finalizer.
    Orphan(Uid),
}

#[derive(Debug)]
struct Node {
    identity: Identity,
    /// False for a virtual node: an owner referenced but not seen by any monitor.
    observed: bool,
    owners: Vec<OwnerRef>,
    deleting: bool,
    /// Being deleted with the `foregroundDeletion` finalizer.
    deleting_dependents: bool,
    /// Being deleted with the `orphan` finalizer.
    orphaning: bool,
    dependents: HashSet<Uid>,
}

/// A copy of one node's state for a worker.
#[derive(Clone, Debug)]
pub(crate) struct NodeView {
    /// Where it is.
    pub(crate) identity: Identity,
    /// Seen by a monitor (else virtual).
    pub(crate) observed: bool,
    /// Has a deletionTimestamp.
    pub(crate) deleting: bool,
    /// Being deleted in the foreground.
    pub(crate) deleting_dependents: bool,
}

/// The graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: HashMap<Uid, Node>,
}

impl Graph {
    /// Applies one change and returns the work it calls for.
    pub(crate) fn apply(&mut self, change: Change) -> Vec<Work> {
        match change {
            Change::Upsert(seen) => self.upsert(seen),
            Change::Delete(id) => self.remove(&id.uid),
            Change::Absent(id) => match self.nodes.get(&id.uid) {
                // A real node is removed only when the absent object is the one it describes.
                Some(n)
                    if n.observed
                        && (n.identity.name != id.name
                            || n.identity.namespace != id.namespace
                            || n.identity.kind != id.kind) =>
                {
                    Vec::new()
                }
                Some(_) => self.remove(&id.uid),
                None => Vec::new(),
            },
            Change::Relisted { api_version, kind, uids } => {
                let gone: Vec<Uid> = self
                    .nodes
                    .iter()
                    .filter(|(uid, n)| {
                        n.observed
                            && n.identity.api_version == api_version
                            && n.identity.kind == kind
                            && !uids.contains(*uid)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
                gone.iter().flat_map(|uid| self.remove(uid)).collect()
            }
        }
    }

    fn upsert(&mut self, seen: Seen) -> Vec<Work> {
        let uid = seen.identity.uid.clone();
        let mut work = Vec::new();
        let has = |f: &str| seen.finalizers.iter().any(|x| x == f);
        let deleting_dependents = seen.deleting && has(FOREGROUND);
        let orphaning = seen.deleting && has(ORPHAN);
        let node = self.nodes.entry(uid.clone()).or_insert_with(|| Node {
            identity: seen.identity.clone(),
            observed: false,
            owners: Vec::new(),
            deleting: false,
            deleting_dependents: false,
            orphaning: false,
            dependents: HashSet::new(),
        });
        let was_observed = node.observed;
        let was_deleting_dependents = was_observed && node.deleting_dependents;
        let was_orphaning = was_observed && node.orphaning;
        let old_owners = std::mem::replace(&mut node.owners, seen.owners.clone());
        node.identity = seen.identity.clone();
        node.observed = true;
        node.deleting = seen.deleting;
        node.deleting_dependents = deleting_dependents;
        node.orphaning = orphaning;
        let dependents: Vec<Uid> = node.dependents.iter().cloned().collect();

        for old in &old_owners {
            let now = seen.owners.iter().find(|o| o.uid == old.uid);
            let Some(owner) = self.nodes.get_mut(&old.uid) else { continue };
            if now.is_none() {
                owner.dependents.remove(&uid);
            }
            // A blocking dependent that stops blocking (reference removed or unblocked) may let a
            // foreground deletion finish.
            if owner.deleting_dependents && old.block && !now.is_some_and(|o| o.block) {
                work.push(Work::Delete(old.uid.clone()));
            }
        }
        for new in seen.owners.iter().filter(|o| !old_owners.iter().any(|x| x.uid == o.uid)) {
            match self.nodes.get_mut(&new.uid) {
                Some(owner) => {
                    owner.dependents.insert(uid.clone());
                    if owner.deleting_dependents {
                        work.push(Work::Delete(uid.clone()));
                    }
                }
                None => {
                    let identity = Identity {
                        api_version: new.api_version.clone(),
                        kind: new.kind.clone(),
                        namespace: seen.identity.namespace.clone(),
                        name: new.name.clone(),
                        uid: new.uid.clone(),
                    };
                    self.nodes.insert(
                        new.uid.clone(),
                        Node {
                            identity,
                            observed: false,
                            owners: Vec::new(),
                            deleting: false,
                            deleting_dependents: false,
                            orphaning: false,
                            dependents: HashSet::from([uid.clone()]),
                        },
                    );
                    // The owner is looked up live: absent, its dependents are collected.
                    work.push(Work::Delete(new.uid.clone()));
                }
            }
        }
        if orphaning && !was_orphaning {
            work.push(Work::Orphan(uid.clone()));
        }
        if deleting_dependents && !was_deleting_dependents {
            work.extend(dependents.into_iter().map(Work::Delete));
            work.push(Work::Delete(uid));
        }
        work
    }

    fn remove(&mut self, uid: &str) -> Vec<Work> {
        let Some(node) = self.nodes.remove(uid) else { return Vec::new() };
        let mut work: Vec<Work> = node.dependents.iter().cloned().map(Work::Delete).collect();
        for o in &node.owners {
            if let Some(owner) = self.nodes.get_mut(&o.uid) {
                owner.dependents.remove(uid);
                if owner.deleting_dependents {
                    work.push(Work::Delete(o.uid.clone()));
                }
            }
        }
        work
    }

    /// A copy of one node, if the graph has it.
    pub(crate) fn view(&self, uid: &str) -> Option<NodeView> {
        self.nodes.get(uid).map(|n| NodeView {
            identity: n.identity.clone(),
            observed: n.observed,
            deleting: n.deleting,
            deleting_dependents: n.deleting_dependents,
        })
    }

    /// The dependents of `uid`.
    pub(crate) fn dependents(&self, uid: &str) -> Vec<Identity> {
        let Some(n) = self.nodes.get(uid) else { return Vec::new() };
        n.dependents.iter().filter_map(|d| self.nodes.get(d)).map(|d| d.identity.clone()).collect()
    }

    /// The dependents of `uid` whose reference to it blocks its deletion, with whether each is itself
    /// being deleted in the foreground.
    pub(crate) fn blocking_dependents(&self, uid: &str) -> Vec<(Uid, bool)> {
        let Some(n) = self.nodes.get(uid) else { return Vec::new() };
        n.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d).map(|dn| (d, dn)))
            .filter(|(_, dn)| dn.owners.iter().any(|o| o.uid == uid && o.block))
            .map(|(d, dn)| (d.clone(), dn.deleting_dependents))
            .collect()
    }

    /// Whether any dependent of `uid` is itself being deleted in the foreground (a possible cycle).
    pub(crate) fn has_dependent_deleting_dependents(&self, uid: &str) -> bool {
        self.nodes
            .get(uid)
            .is_some_and(|n| n.dependents.iter().any(|d| self.nodes.get(d).is_some_and(|dn| dn.deleting_dependents)))
    }

    /// Whether `uid` has dependents.
    pub(crate) fn has_dependents(&self, uid: &str) -> bool {
        self.nodes.get(uid).is_some_and(|n| !n.dependents.is_empty())
    }

    /// How many nodes (for logs and tests).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests;
