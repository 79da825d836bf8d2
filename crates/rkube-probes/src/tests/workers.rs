//! Workers on a scripted runtime with tokio's paused clock: timing, thresholds, gating, removal, errors.

use super::*;

#[tokio::test(start_paused = true)]
async fn liveness_fails_after_threshold_then_stops() {
    let (m, mut updates, mut events) = manager();
    let script = Script::default();
    let c = Container { name: "c".into(), liveness_probe: Some(exec_probe("live")), ..Default::default() };
    m.start(&pod(c), None, "c", "cid", script.executor(|_, _| fail("not alive")));
    let u = updates.recv().await.unwrap();
    assert_eq!((u.kind, u.success, u.message.as_str()), (ProbeKind::Liveness, false, "not alive"));
    assert_eq!((u.pod_uid.as_str(), u.container_name.as_str(), u.container_id.as_str()), ("uid", "c", "cid"));
    // Probes at 0, 10 and 20 s (default period), the third failure being the default threshold.
    assert_eq!(script.times("live"), [0, 10, 20]);
    let ev = drain(&mut events);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0], ("spec.containers{c}".into(), "Unhealthy".into(), "Liveness probe failed: not alive".into()));
    // The worker is done with this container instance.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(script.times("live").len(), 3);
    assert!(updates.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn readiness_reports_first_verdict_and_changes_only() {
    let (m, mut updates, _events) = manager();
    let script = Script::default();
    let probe = Probe {
        period_seconds: Some(5),
        success_threshold: Some(2),
        failure_threshold: Some(2),
        ..exec_probe("ready")
    };
    let c = Container { name: "c".into(), readiness_probe: Some(probe), ..Default::default() };
    // Healthy for 4 probes, then unhealthy for 3, then healthy again.
    m.start(&pod(c), None, "c", "cid", script.executor(|_, n| if (4..7).contains(&n) { fail("nope") } else { ok() }));
    let verdicts: Vec<(bool, u64)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let u = updates.recv().await.unwrap();
            v.push((u.success, script.times("ready").last().copied().unwrap()));
        }
        v
    };
    // Ready after the 2nd success (5 s), unready after the 2nd failure (25 s), ready after 2 more successes (40 s).
    assert_eq!(verdicts, [(true, 5), (false, 25), (true, 40)]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(updates.try_recv().is_err(), "no update without a change");
}

#[tokio::test(start_paused = true)]
async fn startup_gates_liveness_and_readiness() {
    let (m, mut updates, mut events) = manager();
    let script = Script::default();
    let c = Container {
        name: "c".into(),
        startup_probe: Some(Probe { period_seconds: Some(2), failure_threshold: Some(10), ..exec_probe("startup") }),
        liveness_probe: Some(Probe { period_seconds: Some(3), ..exec_probe("live") }),
        readiness_probe: Some(Probe { period_seconds: Some(3), ..exec_probe("ready") }),
        ..Default::default()
    };
    m.start(
        &pod(c),
        None,
        "c",
        "cid",
        script.executor(|cmd, n| if cmd == "startup" && n < 3 { fail("starting") } else { ok() }),
    );
    let u = updates.recv().await.unwrap();
    assert_eq!((u.kind, u.success), (ProbeKind::Startup, true));
    assert_eq!(script.times("startup"), [0, 2, 4, 6]);
    assert!(script.times("live").is_empty() && script.times("ready").is_empty());
    let u = updates.recv().await.unwrap();
    assert_eq!((u.kind, u.success), (ProbeKind::Readiness, true));
    // The gated workers probe from their next tick on (6 s or 9 s: the same instant as startup's success is a
    // race, as upstream's); startup is done.
    let ready = script.times("ready");
    assert!(ready == [6] || ready == [9], "{ready:?}");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(script.times("startup").len(), 4);
    assert!(script.times("live").len() >= 10);
    let ev = drain(&mut events);
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| e.2 == "Startup probe failed: starting"));
}

#[tokio::test(start_paused = true)]
async fn startup_failure_is_reported_once_and_stops() {
    let (m, mut updates, _events) = manager();
    let script = Script::default();
    let c = Container {
        name: "c".into(),
        startup_probe: Some(Probe { period_seconds: Some(1), failure_threshold: Some(2), ..exec_probe("startup") }),
        liveness_probe: Some(exec_probe("live")),
        ..Default::default()
    };
    m.start(&pod(c), None, "c", "cid", script.executor(|_, _| fail("never")));
    let u = updates.recv().await.unwrap();
    assert_eq!((u.kind, u.success, u.message.as_str()), (ProbeKind::Startup, false, "never"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(script.times("startup"), [0, 1]);
    assert!(script.times("live").is_empty());
}

#[tokio::test(start_paused = true)]
async fn initial_delay_and_removal() {
    let (m, _updates, _events) = manager();
    let script = Script::default();
    let probe = Probe { initial_delay_seconds: Some(15), ..exec_probe("ready") };
    let c = Container { name: "c".into(), readiness_probe: Some(probe), ..Default::default() };
    let p = pod(c);
    m.start(&p, None, "c", "cid", script.executor(|_, _| ok()));
    // The same instance again does nothing.
    m.start(&p, None, "c", "cid", script.executor(|_, _| ok()));
    tokio::time::sleep(Duration::from_secs(35)).await;
    // Ticks at 0 and 10 s fall in the delay; the first probe is at 20 s, as upstream's ticker.
    assert_eq!(script.times("ready"), [20, 30]);
    m.remove_container("cid");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(script.times("ready").len(), 2);

    m.start(&p, None, "c", "cid2", script.executor(|_, _| ok()));
    tokio::time::sleep(Duration::from_secs(25)).await;
    let before = script.times("ready").len();
    assert!(before > 2);
    m.remove_pod("uid");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(script.times("ready").len(), before);
}

#[tokio::test(start_paused = true)]
async fn errored_probes_are_thrown_away_and_retried() {
    let (m, mut updates, mut events) = manager();
    let script = Script::default();
    let c = Container {
        name: "c".into(),
        liveness_probe: Some(Probe { failure_threshold: Some(1), ..exec_probe("live") }),
        ..Default::default()
    };
    m.start(
        &pod(c),
        None,
        "c",
        "cid",
        script.executor(|_, _| Err(ExecError::Runtime("rpc error: code = NotFound desc = container not found".into()))),
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    // Three attempts per probe, three probes (0, 10, 20 s), no verdict.
    assert_eq!(script.times("live"), [0, 0, 0, 10, 10, 10, 20, 20, 20]);
    assert!(updates.try_recv().is_err());
    let ev = drain(&mut events);
    assert_eq!(
        ev[0].2,
        "Liveness probe errored and resulted in unknown state: rpc error: code = NotFound desc = container not found"
    );
}

#[tokio::test]
async fn http_readiness_worker_end_to_end() {
    let s = Server::start(false).await;
    let (m, mut updates, mut events) = manager();
    let probe = |path: &str| Probe {
        http_get: Some(get(path, s.port)),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    };
    let good = Container { name: "good".into(), readiness_probe: Some(probe("/ok")), ..Default::default() };
    let bad = Container { name: "bad".into(), readiness_probe: Some(probe("/fail")), ..Default::default() };
    let mut p = pod(good);
    p.spec.as_mut().unwrap().containers.push(bad);
    let ip = Some("127.0.0.1".parse().unwrap());
    let unused = Script::default();
    m.start(&p, ip, "good", "g", unused.executor(|_, _| ok()));
    m.start(&p, ip, "bad", "b", unused.executor(|_, _| ok()));
    let mut got = Vec::new();
    for _ in 0..2 {
        let u = tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.unwrap().unwrap();
        got.push((u.container_name, u.success, u.message));
    }
    got.sort();
    assert_eq!(got[0], ("bad".into(), false, "HTTP probe failed with statuscode: 500".into()));
    assert_eq!(got[1], ("good".into(), true, String::new()));
    let ev = drain(&mut events);
    assert!(ev.contains(&(
        "spec.containers{bad}".into(),
        "Unhealthy".into(),
        "Readiness probe failed: HTTP probe failed with statuscode: 500".into()
    )));
}
