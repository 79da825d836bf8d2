//! The conformance suite every backend runs unchanged: each `pub async fn` here is one test,
//! and [`crate::conformance_tests!`] turns them into `#[tokio::test]`s in a backend crate's tests.

use std::any::Any;
use std::sync::Arc;

use crate::Store;

/// A fresh, empty store for one test, with whatever keeps it alive (temp dirs, an etcd process).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Dropped after the test: cleans up what the store needed.
    pub guard: Box<dyn Any + Send>,
}

/// Defines one `#[tokio::test]` per conformance test, each calling `$make().await` for a fresh [`Fixture`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            crud_and_revisions,
            delete_with_cas,
            cas_race_one_winner_per_round,
            list_at_old_revision,
            watch_replay_and_live_order,
            watch_prefix_isolation,
            watch_concurrent_writers_nothing_missed_or_repeated,
            compaction_expires_old_reads_and_watches,
            pagination_over_100k_keys,
            large_values
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture: $crate::conformance::Fixture = ($make)().await;
                $crate::conformance::$name(fixture.store.clone()).await;
                drop(fixture);
            }
        )*
    };
}

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;

use crate::{Error, Event, EventKind, ListOptions, Revision, WatchStream};

const WATCH_WAIT: Duration = Duration::from_secs(30);

/// Reads `n` events from a watch, failing the test if they do not come (a hang is a failure, not a measurement).
pub async fn next_events(watch: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(WATCH_WAIT, watch.next()).await {
            Ok(Some(Ok(ev))) => out.push(ev),
            Ok(Some(Err(e))) => panic!("watch failed after {} of {n} events: {e}", out.len()),
            Ok(None) => panic!("watch ended after {} of {n} events", out.len()),
            Err(_) => panic!("watch delivered only {} of {n} events in {WATCH_WAIT:?}", out.len()),
        }
    }
    out
}

/// Asserts that nothing more arrives on a watch for a short while.
async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("unexpected extra watch item: {item:?}");
    }
}

/// Create, get, update, delete with the revision rules: every write a new, larger revision; create revision kept.
pub async fn crud_and_revisions(store: Arc<dyn Store>) {
    let r0 = store.current_revision().await.expect("current revision");
    let a = store.create("/registry/configmaps/default/a", b"{\"v\":1}".to_vec()).await.expect("create");
    assert!(a.mod_revision > r0, "create must bump the revision");
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(store.current_revision().await.expect("rev"), a.mod_revision);

    let err = store.create("/registry/configmaps/default/a", b"x".to_vec()).await.expect_err("duplicate create");
    assert!(matches!(err, Error::AlreadyExists { ref key } if key == "/registry/configmaps/default/a"), "{err:?}");

    let got = store.get("/registry/configmaps/default/a").await.expect("get").expect("present");
    assert_eq!(got, a);
    assert!(store.get("/registry/configmaps/default/none").await.expect("get missing").is_none());

    let b = store.update(&a.key, b"{\"v\":2}".to_vec(), a.mod_revision).await.expect("update");
    assert!(b.mod_revision > a.mod_revision);
    assert_eq!(b.create_revision, a.create_revision);
    assert_eq!(b.value, b"{\"v\":2}");

    let err = store.update(&a.key, b"stale".to_vec(), a.mod_revision).await.expect_err("stale update");
    assert!(
        matches!(err, Error::Conflict { expected, actual, .. } if expected == a.mod_revision && actual == b.mod_revision),
        "{err:?}"
    );
    assert_eq!(
        store.get(&a.key).await.expect("get").expect("present").value,
        b"{\"v\":2}",
        "a failed CAS must not write"
    );

    let err = store.update("/registry/configmaps/default/none", b"x".to_vec(), 1).await.expect_err("update missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let (prev, del_rev) = store.delete(&a.key, None).await.expect("delete");
    assert_eq!(prev, b);
    assert!(del_rev > b.mod_revision);
    assert!(store.get(&a.key).await.expect("get").is_none());
    let err = store.delete(&a.key, None).await.expect_err("delete missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // A key can be created again after deletion, with a fresh create revision.
    let again = store.create(&a.key, b"{}".to_vec()).await.expect("recreate");
    assert!(again.create_revision > del_rev);
}

/// Delete with compare-and-swap: a stale revision is a Conflict and deletes nothing.
pub async fn delete_with_cas(store: Arc<dyn Store>) {
    let a = store.create("/registry/pods/ns/p", b"1".to_vec()).await.expect("create");
    let b = store.update(&a.key, b"2".to_vec(), a.mod_revision).await.expect("update");
    let err = store.delete(&a.key, Some(a.mod_revision)).await.expect_err("stale delete");
    assert!(matches!(err, Error::Conflict { actual, .. } if actual == b.mod_revision), "{err:?}");
    assert!(store.get(&a.key).await.expect("get").is_some());
    let (prev, _) = store.delete(&a.key, Some(b.mod_revision)).await.expect("delete");
    assert_eq!(prev.value, b"2");
}

/// N writers race on one key for several rounds: in each round exactly one compare-and-swap wins.
pub async fn cas_race_one_winner_per_round(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const ROUNDS: usize = 20;
    let key = "/registry/leases/kube-system/race";
    store.create(key, b"0".to_vec()).await.expect("create");
    for round in 0..ROUNDS {
        let base = store.get(key).await.expect("get").expect("present");
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let barrier = barrier.clone();
            let rev = base.mod_revision;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.update(key, format!("round {round} writer {w}").into_bytes(), rev).await
            }));
        }
        let mut winners = Vec::new();
        for (w, t) in tasks.into_iter().enumerate() {
            match t.await.expect("join") {
                Ok(kv) => winners.push((w, kv)),
                Err(Error::Conflict { expected, .. }) => assert_eq!(expected, base.mod_revision),
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer must win, got {}", winners.len());
        let now = store.get(key).await.expect("get").expect("present");
        assert_eq!(now.value, format!("round {round} writer {}", winners[0].0).into_bytes());
    }
}

/// A list at an older revision shows the state as it was then.
pub async fn list_at_old_revision(store: Arc<dyn Store>) {
    let p = "/registry/secrets/ns/";
    let a = store.create(&format!("{p}a"), b"a1".to_vec()).await.expect("create a");
    store.create(&format!("{p}b"), b"b1".to_vec()).await.expect("create b");
    let snapshot = store.current_revision().await.expect("rev");
    store.update(&a.key, b"a2".to_vec(), a.mod_revision).await.expect("update a");
    store.delete(&format!("{p}b"), None).await.expect("delete b");
    store.create(&format!("{p}c"), b"c1".to_vec()).await.expect("create c");
    // A key just outside the prefix must never show up.
    store.create("/registry/secrets/ns2/x", b"x".to_vec()).await.expect("create other ns");

    let old = store.list(p, ListOptions { revision: Some(snapshot), ..Default::default() }).await.expect("old list");
    assert_eq!(old.revision, snapshot);
    let old_view: Vec<(&str, &[u8])> = old.items.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice())).collect();
    assert_eq!(old_view, vec![("/registry/secrets/ns/a", &b"a1"[..]), ("/registry/secrets/ns/b", &b"b1"[..])]);

    let now = store.list(p, ListOptions::default()).await.expect("list");
    let now_view: Vec<(&str, &[u8])> = now.items.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice())).collect();
    assert_eq!(now_view, vec![("/registry/secrets/ns/a", &b"a2"[..]), ("/registry/secrets/ns/c", &b"c1"[..])]);
    assert_eq!(now.revision, store.current_revision().await.expect("rev"));
    assert!(!now.more);

    let future = now.revision + 1000;
    let err = store.list(p, ListOptions { revision: Some(future), ..Default::default() }).await.expect_err("future");
    assert!(matches!(err, Error::FutureRevision { .. }), "{err:?}");
}

/// A watch replays history after a revision, then continues live, in order, with previous values.
pub async fn watch_replay_and_live_order(store: Arc<dyn Store>) {
    let p = "/registry/configmaps/w/";
    let start = store.current_revision().await.expect("rev");
    let a = store.create(&format!("{p}a"), b"1".to_vec()).await.expect("create");
    let a2 = store.update(&a.key, b"2".to_vec(), a.mod_revision).await.expect("update");
    let b = store.create(&format!("{p}b"), b"b".to_vec()).await.expect("create b");
    let (_, del_rev) = store.delete(&a.key, None).await.expect("delete");

    let mut all = store.watch(p, start).await.expect("watch from start");
    let evs = next_events(&mut all, 4).await;
    let kinds: Vec<EventKind> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Added, EventKind::Modified, EventKind::Added, EventKind::Deleted]);
    let revs: Vec<Revision> = evs.iter().map(Event::revision).collect();
    assert_eq!(revs, vec![a.mod_revision, a2.mod_revision, b.mod_revision, del_rev]);
    assert_eq!(evs[0].prev, None);
    assert_eq!(evs[1].prev.as_ref().map(|p| p.value.clone()), Some(b"1".to_vec()));
    assert_eq!(evs[1].kv.value, b"2");
    assert_eq!(evs[3].kv.key, a.key);
    assert_eq!(evs[3].prev.as_ref().map(|p| p.value.clone()), Some(b"2".to_vec()), "delete carries the last value");

    // From the middle: exactly the events after that revision.
    let mut mid = store.watch(p, a2.mod_revision).await.expect("watch from middle");
    let evs = next_events(&mut mid, 2).await;
    assert_eq!(evs.iter().map(Event::revision).collect::<Vec<_>>(), vec![b.mod_revision, del_rev]);

    // Live: new writes reach both watchers once, in order.
    let c = store.create(&format!("{p}c"), b"c".to_vec()).await.expect("create c");
    let c2 = store.update(&c.key, b"c2".to_vec(), c.mod_revision).await.expect("update c");
    for w in [&mut all, &mut mid] {
        let evs = next_events(w, 2).await;
        assert_eq!(evs.iter().map(Event::revision).collect::<Vec<_>>(), vec![c.mod_revision, c2.mod_revision]);
        assert_quiet(w).await;
    }

    // From the current revision: nothing old, only what comes next.
    let mut now = store.watch(p, c2.mod_revision).await.expect("watch from now");
    assert_quiet(&mut now).await;
    let d = store.create(&format!("{p}d"), b"d".to_vec()).await.expect("create d");
    assert_eq!(next_events(&mut now, 1).await[0].kv, d);
}

/// A watch on one prefix sees nothing of keys outside it, including keys that merely share leading characters.
pub async fn watch_prefix_isolation(store: Arc<dyn Store>) {
    let start = store.current_revision().await.expect("rev");
    let mut w = store.watch("/registry/pods/default/", start).await.expect("watch");
    store.create("/registry/pods/default-2/x", b"no".to_vec()).await.expect("create");
    store.create("/registry/pods/kube-system/y", b"no".to_vec()).await.expect("create");
    store.create("/registry/podtemplates/default/z", b"no".to_vec()).await.expect("create");
    let mine = store.create("/registry/pods/default/x", b"yes".to_vec()).await.expect("create");
    let evs = next_events(&mut w, 1).await;
    assert_eq!(evs[0].kv, mine);
    assert_quiet(&mut w).await;
}

/// Concurrent writers on many keys: a watch sees every write exactly once, in strictly increasing revision order.
pub async fn watch_concurrent_writers_nothing_missed_or_repeated(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 150;
    let p = "/registry/events/load/";
    let start = store.current_revision().await.expect("rev");
    let mut early = store.watch(p, start).await.expect("watch");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..PER_WRITER {
                let key = format!("{p}w{w}-{}", i % 10);
                let kv = match store.get(&key).await.expect("get") {
                    None => store.create(&key, format!("{i}").into_bytes()).await.expect("create"),
                    Some(kv) => store.update(&key, format!("{i}").into_bytes(), kv.mod_revision).await.expect("update"),
                };
                revs.push(kv.mod_revision);
            }
            revs
        }));
    }
    // A second watcher joins while writes are under way, from an older revision.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = store.watch(p, start).await.expect("late watch");
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.expect("join"));
    }
    let total = WRITERS * PER_WRITER;
    assert_eq!(acked.len(), total, "every acknowledged write has its own revision");
    for w in [&mut early, &mut late] {
        let evs = next_events(w, total).await;
        let revs: Vec<Revision> = evs.iter().map(Event::revision).collect();
        assert!(revs.windows(2).all(|p| p[0] < p[1]), "revisions must strictly increase");
        assert_eq!(revs.iter().copied().collect::<HashSet<_>>(), acked, "exactly the acknowledged writes");
        for ev in &evs {
            let expected =
                if ev.kv.create_revision == ev.kv.mod_revision { EventKind::Added } else { EventKind::Modified };
            assert_eq!(ev.kind, expected);
        }
        assert_quiet(w).await;
    }
}

/// Compaction: reads and watches before the compacted revision fail with Expired; at or after it they work.
pub async fn compaction_expires_old_reads_and_watches(store: Arc<dyn Store>) {
    let p = "/registry/configmaps/c/";
    let a = store.create(&format!("{p}a"), b"1".to_vec()).await.expect("create");
    let before = a.mod_revision;
    let mut kv = a.clone();
    for i in 2..=10 {
        kv = store.update(&a.key, format!("{i}").into_bytes(), kv.mod_revision).await.expect("update");
    }
    let gone = store.create(&format!("{p}gone"), b"x".to_vec()).await.expect("create");
    // A key deleted before the compaction point: its tombstone goes with the compaction.
    let (_, compact_at) = store.delete(&gone.key, None).await.expect("delete");
    let after = store.create(&format!("{p}b"), b"b".to_vec()).await.expect("create b");

    store.compact(compact_at).await.expect("compact");
    assert_eq!(store.compacted_revision().await.expect("compacted"), compact_at);

    let err = store.list(p, ListOptions { revision: Some(before), ..Default::default() }).await.expect_err("old list");
    assert!(
        matches!(err, Error::Expired { requested, compacted } if requested == before && compacted == compact_at),
        "{err:?}"
    );
    let err = store.watch(p, before).await.err().expect("old watch must fail");
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");

    // The compacted revision itself stays readable, and watching from it delivers what came later.
    let at = store.list(p, ListOptions { revision: Some(compact_at), ..Default::default() }).await.expect("list at");
    assert_eq!(at.items.len(), 1);
    assert_eq!(at.items[0].value, b"10");
    let mut w = store.watch(p, compact_at).await.expect("watch from compacted revision");
    let evs = next_events(&mut w, 1).await;
    assert_eq!(evs[0].kv, after);

    // Current reads and writes are unaffected.
    assert_eq!(store.get(&a.key).await.expect("get").expect("present").value, b"10");
    let now = store.list(p, ListOptions::default()).await.expect("list");
    assert_eq!(now.items.len(), 2);
    store.update(&a.key, b"11".to_vec(), kv.mod_revision).await.expect("update after compaction");

    let err = store.compact(compact_at).await.expect_err("compacting again at the same revision");
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");
}

/// 100k keys listed in pages at one revision: every key once, sorted, while other writes go on.
pub async fn pagination_over_100k_keys(store: Arc<dyn Store>) {
    const KEYS: usize = 100_000;
    const CONCURRENCY: usize = 64;
    let p = "/registry/configmaps/many/";
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let store = store.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= KEYS {
                    break;
                }
                store.create(&format!("{p}cm-{i:06}"), format!("{{\"i\":{i}}}").into_bytes()).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }

    let mut seen = 0usize;
    let mut last: Option<String> = None;
    let mut revision = None;
    let mut opts = ListOptions { limit: Some(1000), ..Default::default() };
    let mut pages = 0;
    loop {
        let page = store.list(p, opts.clone()).await.expect("page");
        pages += 1;
        if pages == 2 {
            // Writes after the first page must not show up in later pages read at the first page's revision.
            store.create(&format!("{p}cm-000500-late"), b"late".to_vec()).await.expect("late create");
            store.delete(&format!("{p}cm-099999"), None).await.expect("late delete");
        }
        let rev = *revision.get_or_insert(page.revision);
        assert_eq!(page.revision, rev, "all pages at one revision");
        for kv in &page.items {
            if let Some(prev) = &last {
                assert!(kv.key > *prev, "sorted, no repeats: {prev} then {}", kv.key);
            }
            assert_eq!(kv.key, format!("{p}cm-{seen:06}"));
            seen += 1;
            last = Some(kv.key.clone());
        }
        if !page.more {
            break;
        }
        assert_eq!(page.items.len(), 1000);
        let mut start = last.clone().expect("a full page has a last key");
        start.push('\0');
        opts = ListOptions { revision: Some(rev), limit: Some(1000), start: Some(start) };
    }
    assert_eq!(seen, KEYS);
    assert_eq!(pages, KEYS / 1000);
}

/// Values up to the limit round-trip; one byte more is refused and stores nothing.
pub async fn large_values(store: Arc<dyn Store>) {
    let big: Vec<u8> = (0..crate::MAX_VALUE_SIZE).map(|i| (i % 251) as u8).collect();
    let kv = store.create("/registry/secrets/big/max", big.clone()).await.expect("create at the limit");
    assert_eq!(store.get(&kv.key).await.expect("get").expect("present").value, big);
    let listed = store.list("/registry/secrets/big/", ListOptions::default()).await.expect("list");
    assert_eq!(listed.items[0].value.len(), big.len());

    let rev = store.current_revision().await.expect("rev");
    let mut over = big.clone();
    over.push(0);
    let err = store.create("/registry/secrets/big/over", over.clone()).await.expect_err("over the limit");
    assert!(matches!(err, Error::ValueTooLarge { size, .. } if size == crate::MAX_VALUE_SIZE + 1), "{err:?}");
    let err = store.update(&kv.key, over, kv.mod_revision).await.expect_err("update over the limit");
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    assert_eq!(store.current_revision().await.expect("rev"), rev, "a refused write must not bump the revision");
    assert!(store.get("/registry/secrets/big/over").await.expect("get").is_none());
    assert_eq!(store.get(&kv.key).await.expect("get").expect("present").value, big);
}
