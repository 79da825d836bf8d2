//! httpGet probes against the loopback server: statuses, redirects, errors, headers, named ports, HTTPS.

use super::*;

#[tokio::test]
async fn http_probe_statuses_redirects_and_errors() {
    let s = Server::start(false).await;
    let p = s.port;
    assert_eq!(probe_http(&get("/ok", p)).await, Outcome::Success("fine".into()));
    assert_eq!(probe_http(&get("/fail", p)).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
    // Same host: followed.
    assert_eq!(probe_http(&get("/redirect", p)).await, Outcome::Success("fine".into()));
    // Another host: not followed, a warning with the body.
    assert_eq!(
        probe_http(&get("/away", p)).await,
        Outcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
    assert_eq!(
        probe_http(&get("/loop", p)).await,
        Outcome::Failure(format!(r#"Get "http://127.0.0.1:{p}/loop": stopped after 10 redirects"#))
    );
    assert_eq!(
        probe_http(&get("/slow", p)).await,
        Outcome::Failure(format!(
            r#"Get "http://127.0.0.1:{p}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#
        ))
    );
    match probe_http(&get("/big", p)).await {
        Outcome::Success(body) => assert_eq!(body.len(), 10 * 1024),
        other => panic!("{other:?}"),
    }
    let closed = closed_port();
    assert_eq!(
        probe_http(&get("/ok", closed)).await,
        Outcome::Failure(format!(
            r#"Get "http://127.0.0.1:{closed}/ok": dial tcp 127.0.0.1:{closed}: connect: connection refused"#
        ))
    );
}

#[tokio::test]
async fn http_probe_headers_named_port_and_https_without_certificate_checks() {
    let s = Server::start(false).await;
    let container = Container {
        ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
            name: Some("web".into()),
            container_port: s.port.into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let action = HTTPGetAction {
        path: Some("/ok?x=1".into()),
        port: IntOrString::String("web".into()),
        http_headers: Some(vec![
            HTTPHeader { name: "X-Probe".into(), value: "yes".into() },
            HTTPHeader { name: "Host".into(), value: "svc.example".into() },
        ]),
        ..Default::default()
    };
    let req = http::Request::new(&action, &container, "127.0.0.1", "probe").unwrap();
    assert_eq!(http::probe(&req, Duration::from_secs(1)).await.unwrap(), Outcome::Success("fine".into()));
    let head = s.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /ok?x=1 http/1.1\r\n"), "{head}");
    for line in ["user-agent: kube-probe/1.33", "accept: */*", "x-probe: yes", "host: svc.example", "connection: close"]
    {
        assert!(head.contains(line), "{line} missing in {head}");
    }

    let tls = Server::start(true).await;
    let action = HTTPGetAction { scheme: Some("HTTPS".into()), ..get("/fail", tls.port) };
    assert_eq!(probe_http(&action).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
    let action = HTTPGetAction { scheme: Some("HTTPS".into()), ..get("/ok", tls.port) };
    assert_eq!(probe_http(&action).await, Outcome::Success("fine".into()));
}
