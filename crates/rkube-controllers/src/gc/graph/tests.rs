//! Unit tests of the dependency graph: which work each change calls for.

use super::*;

fn id(kind: &str, name: &str, uid: &str) -> Identity {
    Identity {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: Some("ns".into()),
        name: name.into(),
        uid: uid.into(),
    }
}

fn owner_ref(name: &str, uid: &str, block: bool) -> OwnerRef {
    OwnerRef { api_version: "v1".into(), kind: "ConfigMap".into(), name: name.into(), uid: uid.into(), block }
}

fn seen(name: &str, uid: &str, owners: Vec<OwnerRef>) -> Seen {
    Seen { identity: id("ConfigMap", name, uid), owners, deleting: false, finalizers: Vec::new() }
}

fn deleting(name: &str, uid: &str, finalizer: &str) -> Seen {
    Seen { deleting: true, finalizers: vec![finalizer.into()], ..seen(name, uid, Vec::new()) }
}

#[test]
fn an_unseen_owner_becomes_a_virtual_node_checked_by_a_worker() {
    let mut g = Graph::default();
    let work = g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", false)])));
    assert_eq!(work, vec![Work::Delete("o".into())]);
    let v = g.view("o").expect("virtual owner");
    assert!(!v.observed);
    assert_eq!(v.identity.name, "owner");
    // The worker finds it absent: its dependents are looked at.
    assert_eq!(g.apply(Change::Absent(v.identity)), vec![Work::Delete("d".into())]);
    assert!(g.view("o").is_none());
}

#[test]
fn an_owner_seen_later_keeps_its_dependents_and_its_deletion_enqueues_them() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", false)])));
    assert!(g.apply(Change::Upsert(seen("owner", "o", Vec::new()))).is_empty());
    assert!(g.view("o").is_some_and(|v| v.observed));
    assert_eq!(g.dependents("o").len(), 1);
    assert_eq!(g.apply(Change::Delete(id("ConfigMap", "owner", "o"))), vec![Work::Delete("d".into())]);
    assert_eq!(g.len(), 1);
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("owner", "o", Vec::new())));
    g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", true)])));
    g.apply(Change::Upsert(seen("loose", "l", vec![owner_ref("owner", "o", false)])));
    let mut work = g.apply(Change::Upsert(deleting("owner", "o", FOREGROUND)));
    work.sort_by_key(|w| format!("{w:?}"));
    assert_eq!(work, vec![Work::Delete("d".into()), Work::Delete("l".into()), Work::Delete("o".into())]);
    assert_eq!(g.blocking_dependents("o"), vec![("d".to_owned(), false)]);
    // The same state again starts nothing new.
    assert!(g.apply(Change::Upsert(deleting("owner", "o", FOREGROUND))).is_empty());
    // The blocking dependent goes: the owner is looked at again.
    assert_eq!(g.apply(Change::Delete(id("ConfigMap", "dep", "d"))), vec![Work::Delete("o".into())]);
    assert!(g.blocking_dependents("o").is_empty());
}

#[test]
fn unblocking_a_reference_lets_a_foreground_owner_go_on() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("owner", "o", Vec::new())));
    g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", true)])));
    g.apply(Change::Upsert(deleting("owner", "o", FOREGROUND)));
    assert_eq!(
        g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", false)]))),
        vec![Work::Delete("o".into())]
    );
    assert_eq!(g.apply(Change::Upsert(seen("dep", "d", Vec::new()))), Vec::<Work>::new());
    assert!(g.dependents("o").is_empty());
}

#[test]
fn orphan_finalizer_asks_once() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("owner", "o", Vec::new())));
    assert_eq!(g.apply(Change::Upsert(deleting("owner", "o", ORPHAN))), vec![Work::Orphan("o".into())]);
    assert!(g.apply(Change::Upsert(deleting("owner", "o", ORPHAN))).is_empty());
}

#[test]
fn a_relist_removes_what_it_no_longer_lists() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("owner", "o", Vec::new())));
    g.apply(Change::Upsert(seen("dep", "d", vec![owner_ref("owner", "o", false)])));
    let work = g.apply(Change::Relisted {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        uids: HashSet::from(["d".to_owned()]),
    });
    assert_eq!(work, vec![Work::Delete("d".into())]);
    assert!(g.view("o").is_none());
    // Other kinds are untouched by this relist.
    let work = g.apply(Change::Relisted { api_version: "v1".into(), kind: "Secret".into(), uids: HashSet::new() });
    assert!(work.is_empty());
    assert!(g.view("d").is_some());
}

#[test]
fn absence_of_other_coordinates_does_not_remove_a_real_node() {
    let mut g = Graph::default();
    g.apply(Change::Upsert(seen("owner", "o", Vec::new())));
    assert!(g.apply(Change::Absent(id("ConfigMap", "other-name", "o"))).is_empty());
    assert!(g.view("o").is_some());
}
