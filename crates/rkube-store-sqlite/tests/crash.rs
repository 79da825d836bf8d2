//! A real crash: this test binary re-runs itself as a child that writes as fast as it can, is killed
//! with SIGKILL mid-stream, and every write the child saw acknowledged must be in the reopened file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rkube_store::Store;
use rkube_store_sqlite::{SqliteOptions, SqliteStore};

/// Set (to the database path) only in the child process.
const CHILD_ENV: &str = "RKUBE_SQLITE_CRASH_CHILD_DB";
/// Acknowledgements the parent waits for before killing the child.
const ACKS_BEFORE_KILL: usize = 3000;
/// Concurrent writers in the child, so that kills land inside group commits.
const WRITERS: usize = 8;

fn value_of(key: &str) -> Vec<u8> {
    format!("value of {key} ").repeat(8).into_bytes()
}

/// The child: a no-op unless the parent started this binary with [`CHILD_ENV`] set.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let store =
            Arc::new(SqliteStore::open(path.as_ref(), SqliteOptions::default()).expect("child opens the store"));
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{writer}/{i:08}");
                    let kv = store.create(&key, value_of(&key)).await.expect("child write");
                    // One line per acknowledged write, written whole while holding the lock.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {}", kv.mod_revision).expect("stdout");
                    out.flush().expect("flush");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer task");
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().expect("own test binary"))
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked: Vec<(String, i64)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let Some(rest) = line.strip_prefix("ACK ") else { continue };
        let (key, revision) = rest.rsplit_once(' ').expect("ACK line has key and revision");
        acked.push((key.to_owned(), revision.parse().expect("revision")));
        if acked.len() >= ACKS_BEFORE_KILL {
            break;
        }
    }
    // std's kill sends SIGKILL on unix: no destructor, no flush, no checkpoint runs in the child.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished: {status:?}");
    assert_eq!(acked.len(), ACKS_BEFORE_KILL, "the child stopped before acknowledging enough writes");

    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen after the crash");
    let mut highest = 0;
    for (key, revision) in &acked {
        let kv = store.get(key).await.expect("get").unwrap_or_else(|| panic!("acknowledged key {key} was lost"));
        assert_eq!(kv.value, value_of(key), "value of {key}");
        assert_eq!(kv.mod_revision, *revision, "revision of {key}");
        highest = highest.max(*revision);
    }
    let current = store.current_revision().await.expect("current revision");
    assert!(current >= highest, "current revision {current} is below an acknowledged one {highest}");
    let after = store.create("/after-crash", b"x".to_vec()).await.expect("the store accepts writes after the crash");
    assert!(after.mod_revision > highest);

    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity check");
    assert_eq!(check, "ok");
}
