//! postStart and preStop handlers (upstream's `lifecycle.handlerRunner`): exec through CRI, httpGet (any
//! answer counts; only a transport error fails), sleep; tcpSocket is not a handler upstream runs. Errors carry
//! upstream's wording, which the kubelet puts in `FailedPostStartHook`/`FailedPreStopHook` events.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::Hook;
use crate::exec::Executor;
use crate::{exec, gostr, http, manager};

/// The kubelet's floor for a termination grace period (`minimumGracePeriodInSeconds`).
const MIN_GRACE: u64 = 2;

/// The grace period a preStop hook runs within: the deletion's, else the pod's, else 30 seconds.
pub(crate) fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(MIN_GRACE))
}

/// Runs `handler` for container `name` (instance `container_id`).
pub(crate) async fn run(
    hook: Hook,
    handler: &LifecycleHandler,
    pod: &Pod,
    name: &str,
    container_id: &str,
    pod_ip: Option<IpAddr>,
    exec: &Executor,
) -> Result<(), String> {
    let fallback = Container { name: name.to_owned(), ..Container::default() };
    // Ephemeral containers have no hooks; an unknown name still gets a handler run with its name in messages.
    let container = manager::find_container(pod, name).map_or(&fallback, |(c, _)| c);
    let run = run_handler(hook, handler, pod, container, container_id, pod_ip, exec);
    match hook {
        Hook::PostStart => run.await,
        Hook::PreStop => {
            let grace = grace_period(pod);
            match tokio::time::timeout(grace, run).await {
                Ok(r) => r,
                Err(_) => {
                    // Upstream only logs this: the container is stopped anyway.
                    tracing::info!(container = name, pod = %gostr::pod(pod), ?grace, "PreStop hook not completed in grace period");
                    Ok(())
                }
            }
        }
    }
}

async fn run_handler(
    hook: Hook,
    handler: &LifecycleHandler,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    pod_ip: Option<IpAddr>,
    exec: &Executor,
) -> Result<(), String> {
    let who = format!("for Container {} in Pod {}", gostr::quote(&container.name), gostr::quote(&gostr::pod(pod)));
    if let Some(action) = &handler.exec {
        let cmd = action.command.clone().unwrap_or_default();
        // Upstream passes no timeout to hooks; a preStop command is bounded by the grace period instead.
        let timeout = if hook == Hook::PreStop { grace_period(pod) } else { Duration::ZERO };
        let (error, output) = match exec.exec_sync(container_id, &cmd, timeout).await {
            Ok(out) if out.exit_code == 0 => return Ok(()),
            Ok(out) => (exec::exit_error(&cmd, &out), out.combined()),
            Err(e) => (e.to_string(), Vec::new()),
        };
        return Err(format!(
            "Exec lifecycle hook ([{}]) {who} failed - error: {error}, message: {}",
            cmd.join(" "),
            gostr::quote_bytes(&output)
        ));
    }
    if let Some(action) = &handler.http_get {
        let path = action.path.as_deref().unwrap_or("");
        return run_http(action, pod, container, pod_ip)
            .await
            .map_err(|e| format!("HTTP lifecycle hook ({path}) {who} failed - error: {e}"));
    }
    if let Some(action) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(u64::try_from(action.seconds).unwrap_or(0))).await;
        return Ok(());
    }
    // tcpSocket (deprecated, never run by the kubelet) or an empty handler.
    let message = format!("Cannot run handler: invalid handler: {}", go_handler(handler));
    tracing::warn!(container = %container.name, pod = %gostr::pod(pod), "{message}");
    Err(message)
}

async fn run_http(
    action: &k8s_openapi::api::core::v1::HTTPGetAction,
    pod: &Pod,
    container: &Container,
    pod_ip: Option<IpAddr>,
) -> Result<(), String> {
    let ip = manager::pod_ip(pod, pod_ip);
    if action.host.as_deref().unwrap_or("").is_empty() && ip.is_empty() {
        return Err("failed to find networking container: the pod has no IP".to_owned());
    }
    let request = http::Request::new(action, container, &ip, "lifecycle")?;
    match http::get(&request, None).await {
        Ok(_) => Ok(()),
        // A server answering plain HTTP on an HTTPS hook: upstream retries with HTTP.
        Err(e) if e.contains("server gave HTTP response to HTTPS client") => {
            match http::get(&request.as_plain_http(), None).await {
                Ok(_) => {
                    tracing::warn!(url = %request.url(), "request to HTTPS lifecycle hook got HTTP response, retry with HTTP succeeded");
                    Ok(())
                }
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Go's `%v` of a `*LifecycleHandler` as the kubelet prints an invalid one.
fn go_handler(h: &LifecycleHandler) -> String {
    let tcp = |t: &TCPSocketAction| {
        let port = match &t.port {
            IntOrString::Int(n) => format!("{{0 {n} }}"),
            IntOrString::String(s) => format!("{{1 0 {s}}}"),
        };
        format!("&TCPSocketAction{{Port:{port},Host:{},}}", t.host.as_deref().unwrap_or(""))
    };
    format!(
        "&LifecycleHandler{{Exec:nil,HTTPGet:nil,TCPSocket:{},Sleep:nil,}}",
        h.tcp_socket.as_ref().map_or_else(|| "nil".to_owned(), tcp)
    )
}
