//! Lifecycle hooks: exec, httpGet, sleep and tcpSocket handlers and their messages.

use super::*;

fn hook_pod(handler: LifecycleHandler, grace: Option<i64>) -> Pod {
    let c = Container {
        name: "c".into(),
        lifecycle: Some(Lifecycle { pre_stop: Some(handler), ..Default::default() }),
        ..Default::default()
    };
    let mut p = pod(c);
    p.spec.as_mut().unwrap().termination_grace_period_seconds = grace;
    p
}

async fn run_hook(hook: Hook, handler: LifecycleHandler, pod: &Pod, exec: &Executor) -> Result<(), String> {
    lifecycle::run(hook, &handler, pod, "c", "cid", Some("127.0.0.1".parse().unwrap()), exec).await
}

#[tokio::test]
async fn exec_hook_errors_are_worded_as_upstream() {
    let handler = LifecycleHandler {
        exec: Some(ExecAction { command: Some(["sh", "-c", "exit 1"].map(String::from).into()) }),
        ..Default::default()
    };
    let p = hook_pod(handler.clone(), Some(7));
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let t = timeouts.clone();
    let exec = Executor::Fake(Arc::new(move |_cmd: &[String], timeout| {
        t.lock().unwrap().push(timeout);
        Ok(Output { exit_code: 1, ..Default::default() })
    }));
    let err = run_hook(Hook::PostStart, handler.clone(), &p, &exec).await.unwrap_err();
    assert_eq!(
        err,
        r#"Exec lifecycle hook ([sh -c exit 1]) for Container "c" in Pod "p_ns(uid)" failed - error: command 'sh -c exit 1' exited with 1: , message: """#
    );
    assert!(run_hook(Hook::PreStop, handler, &p, &exec).await.is_err());
    // postStart has no deadline; preStop gets the grace period.
    assert_eq!(*timeouts.lock().unwrap(), [Duration::ZERO, Duration::from_secs(7)]);
}

#[tokio::test]
async fn http_hooks_fail_only_on_transport_errors_and_fall_back_to_http() {
    let s = Server::start(false).await;
    let exec = Script::default().executor(|_, _| ok());
    let hook = |action: HTTPGetAction| LifecycleHandler { http_get: Some(action), ..Default::default() };
    let p = hook_pod(LifecycleHandler::default(), None);
    // Any answer is fine, even a 500.
    run_hook(Hook::PostStart, hook(get("/fail", s.port)), &p, &exec).await.unwrap();
    // An HTTPS hook answered in plain HTTP is retried with HTTP.
    let https = HTTPGetAction { scheme: Some("HTTPS".into()), ..get("/ok", s.port) };
    run_hook(Hook::PostStart, hook(https), &p, &exec).await.unwrap();
    assert!(s.heads.lock().unwrap().iter().all(|h| h.to_ascii_lowercase().contains("user-agent: kube-lifecycle/1.33")));
    let closed = closed_port();
    let err = run_hook(Hook::PostStart, hook(get("/hook", closed)), &p, &exec).await.unwrap_err();
    assert_eq!(
        err,
        format!(
            r#"HTTP lifecycle hook (/hook) for Container "c" in Pod "p_ns(uid)" failed - error: Get "http://127.0.0.1:{closed}/hook": dial tcp 127.0.0.1:{closed}: connect: connection refused"#
        )
    );
}

#[tokio::test(start_paused = true)]
async fn sleep_hooks_and_pre_stop_deadline() {
    let exec = Script::default().executor(|_, _| ok());
    let sleep = |s| LifecycleHandler { sleep: Some(SleepAction { seconds: s }), ..Default::default() };
    let p = hook_pod(sleep(100), Some(5));
    let t0 = tokio::time::Instant::now();
    run_hook(Hook::PostStart, sleep(3), &p, &exec).await.unwrap();
    assert_eq!(t0.elapsed().as_secs(), 3);
    // A preStop hook longer than the grace period is abandoned at its end.
    let t0 = tokio::time::Instant::now();
    run_hook(Hook::PreStop, sleep(100), &p, &exec).await.unwrap();
    assert_eq!(t0.elapsed().as_secs(), 5);
}

#[tokio::test]
async fn tcp_socket_hooks_are_invalid() {
    let exec = Script::default().executor(|_, _| ok());
    let handler = LifecycleHandler {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(8080), host: None }),
        ..Default::default()
    };
    let p = hook_pod(handler.clone(), None);
    assert_eq!(
        run_hook(Hook::PreStop, handler, &p, &exec).await.unwrap_err(),
        "Cannot run handler: invalid handler: &LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:&TCPSocketAction{Port:{0 8080 },Host:,},Sleep:nil,}"
    );
}

#[tokio::test(start_paused = true)]
async fn run_handler_tells_pre_stop_from_post_start_by_the_container_spec() {
    let sleep = |s| LifecycleHandler { sleep: Some(SleepAction { seconds: s }), ..Default::default() };
    let p = hook_pod(sleep(100), Some(3));
    // No runtime is reached by sleep handlers; a lazy client to nowhere is enough.
    let runtime = rkube_cri::Runtime::connect_lazy(std::path::Path::new("/nonexistent/rkprb.sock")).unwrap();
    let target = crate::Target { pod_ip: None, container_id: "cid".into(), container_name: "c".into(), runtime };
    // The container's preStop: cut at the 3 s grace period.
    let t0 = tokio::time::Instant::now();
    crate::run_handler(&sleep(100), &p, &target).await.unwrap();
    assert_eq!(t0.elapsed().as_secs(), 3);
    // Any other handler is a postStart: no deadline.
    let t0 = tokio::time::Instant::now();
    crate::run_handler(&sleep(7), &p, &target).await.unwrap();
    assert_eq!(t0.elapsed().as_secs(), 7);
}
