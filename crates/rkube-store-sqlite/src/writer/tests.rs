//! Group commit, driven one round at a time without the thread.

use std::sync::Arc;
use std::time::Duration;

use rkube_store::Error;
use tokio::sync::{oneshot, watch};

use super::{Command, Op, Outcome, State};
use crate::compactor::Compactor;
use crate::recent::Recent;
use crate::schema;
use crate::watch::Registry;

fn state(dir: &tempfile::TempDir) -> (State, watch::Receiver<i64>) {
    let path = dir.path().join("state.db");
    let conn = schema::open_writer(&path, Duration::from_secs(1)).expect("open");
    let (notify, rx) = watch::channel(0);
    let recent = Arc::new(Recent::default());
    let compactor = Compactor::new("test".into(), 1000, Duration::ZERO, Arc::new(Registry::default()), recent.clone());
    let state =
        State { conn, location: "test".into(), notify, recent, compactor, interval: Duration::ZERO, commits: 0 };
    (state, rx)
}

fn queue(tx: &std::sync::mpsc::Sender<Command>, op: Op) -> oneshot::Receiver<rkube_store::Result<Outcome>> {
    let (reply, rx) = oneshot::channel();
    tx.send(Command::Write(op, reply)).expect("queue");
    rx
}

#[test]
fn queued_writes_share_one_transaction_each_with_its_own_check_and_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, notify) = state(&dir);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut replies = Vec::new();
    for i in 0..10 {
        replies.push(queue(&tx, Op::Create { key: format!("/k/{i}"), value: vec![i] }));
    }
    // Within the same batch: a duplicate create and a CAS against the revision the batch just wrote.
    let duplicate = queue(&tx, Op::Create { key: "/k/3".into(), value: vec![] });
    let cas = queue(&tx, Op::Update { key: "/k/9".into(), value: b"new".to_vec(), expected: 10 });
    let stale = queue(&tx, Op::Delete { key: "/k/9".into(), expected: Some(10) });

    let first = rx.try_recv().ok();
    state.round(first, &rx);
    assert_eq!(state.commits, 1, "one transaction for the whole queue");
    assert_eq!(*notify.borrow(), 11);

    for (i, mut reply) in replies.into_iter().enumerate() {
        match reply.try_recv().expect("answered after the commit") {
            Ok(Outcome::Put(kv)) => assert_eq!(kv.mod_revision, i as i64 + 1),
            _ => panic!("create {i} failed"),
        }
    }
    let mut duplicate = duplicate;
    assert!(matches!(duplicate.try_recv().expect("answered"), Err(Error::AlreadyExists { .. })));
    let mut cas = cas;
    assert!(
        matches!(cas.try_recv().expect("answered"), Ok(Outcome::Put(kv)) if kv.mod_revision == 11 && kv.create_revision == 10)
    );
    let mut stale = stale;
    assert!(matches!(stale.try_recv().expect("answered"), Err(Error::Conflict { expected: 10, actual: 11, .. })));

    // The committed changes, and only those, are in the window this process's watches read, as the log has them.
    let window = state.recent.take("/k/", 0, 100).expect("the window starts where the batch did");
    assert_eq!(window.last, 11);
    assert_eq!(window.events.iter().map(|e| e.revision()).collect::<Vec<_>>(), (1..=11).collect::<Vec<i64>>());
    let update = &window.events[10];
    assert_eq!(update.kind, rkube_store::EventKind::Modified);
    assert_eq!(update.kv.value, b"new".to_vec());
    let prev = update.prev.as_ref().expect("an update carries the previous value");
    assert_eq!((prev.value.clone(), prev.mod_revision), (vec![9], 10));
}

#[test]
fn a_deletion_in_the_window_carries_the_last_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, _notify) = state(&dir);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut created = queue(&tx, Op::Create { key: "/k/a".into(), value: b"one".to_vec() });
    let mut deleted = queue(&tx, Op::Delete { key: "/k/a".into(), expected: Some(1) });
    state.round(rx.try_recv().ok(), &rx);
    assert!(matches!(created.try_recv().expect("answered"), Ok(Outcome::Put(_))));
    assert!(matches!(deleted.try_recv().expect("answered"), Ok(Outcome::Deleted(_, 2))));
    let window = state.recent.take("/k/", 1, 100).expect("inside the window");
    let deleted = &window.events[0];
    assert_eq!(deleted.kind, rkube_store::EventKind::Deleted);
    assert_eq!((deleted.kv.value.clone(), deleted.kv.mod_revision), (b"one".to_vec(), 2));
    assert_eq!(deleted.prev.as_ref().map(|p| p.mod_revision), Some(1));
}

#[test]
fn a_batch_without_changes_commits_nothing_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut state, notify) = state(&dir);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut missing = queue(&tx, Op::Delete { key: "/none".into(), expected: None });
    state.round(rx.try_recv().ok(), &rx);
    assert!(matches!(missing.try_recv().expect("answered"), Err(Error::NotFound { .. })));
    assert_eq!(*notify.borrow(), 0, "no revision was announced");
    assert_eq!(schema::revisions(&state.conn).expect("revisions").current, 0);
}

/// The statements every write and every watch poll runs stay prepared: none of them is planned against its
/// bound values, which would make SQLite re-parse it on each execution.
#[test]
fn hot_statements_are_prepared_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, _notify) = state(&dir);
    let conn = &state.conn;
    let ops: Vec<Op> = (0..20).map(|i| Op::Create { key: format!("/k/{i}"), value: vec![1] }).collect();
    for chunk in ops.chunks(5) {
        let refs: Vec<&Op> = chunk.iter().collect();
        super::apply(conn, &refs).expect("apply");
        crate::read::get(conn, "test", "/k/1").expect("get");
        crate::watch::poll(conn, "test", "/k/", 0).expect("poll");
    }
    for sql in [super::LIVE_SQL, crate::read::GET_SQL, crate::watch::POLL_SQL.as_str()] {
        let stmt = conn.prepare_cached(sql).expect("cached");
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "re-prepared: {sql}");
        assert!(stmt.get_status(rusqlite::StatementStatus::VmStep) > 0, "never ran: {sql}");
    }
}
