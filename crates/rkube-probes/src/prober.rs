//! One probe of one container, as upstream's `prober.probe`: the action run with its timeout (retried up to
//! three times when it cannot run at all), and the `Unhealthy`/`ProbeWarning` events about the container.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};

use crate::ProbeKind;
use crate::exec::{self, ExecError, Executor};
use crate::outcome::{Errored, Outcome};
use crate::{grpc, http, port, tcp};

/// Upstream's `maxProbeRetries`: attempts when a probe errors (not when it fails).
const MAX_ATTEMPTS: usize = 3;

/// The container a worker probes.
pub(crate) struct Probed {
    pub(crate) pod: Arc<Pod>,
    pub(crate) container: Container,
    pub(crate) container_id: String,
    /// The pod's IP as text; empty when unknown (the local system then, as upstream's empty host).
    pub(crate) pod_ip: String,
    pub(crate) exec: Executor,
    /// `spec.containers{name}` or `spec.initContainers{name}`: where the container's events point.
    pub(crate) field_path: String,
}

/// Where probe events go.
#[derive(Clone)]
pub(crate) enum Events {
    /// The API, through the kubelet's recorder.
    Recorder(rkube_client::events::Recorder),
    /// Captured `(fieldPath, reason, message)` for tests.
    #[cfg(test)]
    Captured(tokio::sync::mpsc::UnboundedSender<(String, String, String)>),
}

impl Events {
    /// Records a Warning event about the probed container without holding up the probe loop.
    pub(crate) fn warn(&self, probed: &Probed, reason: &str, message: String) {
        match self {
            Events::Recorder(recorder) => {
                let mut regarding = rkube_client::events::reference(&*probed.pod);
                regarding.field_path = Some(probed.field_path.clone());
                let (recorder, reason) = (recorder.clone(), reason.to_owned());
                tokio::spawn(async move {
                    recorder.record_ref(regarding, rkube_client::events::EventType::Warning, &reason, &message).await;
                });
            }
            #[cfg(test)]
            Events::Captured(tx) => {
                let _ = tx.send((probed.field_path.clone(), reason.to_owned(), message));
            }
        }
    }
}

/// `Liveness`, `Readiness`, `Startup`: how upstream names probe types in messages.
pub(crate) fn kind_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Liveness => "Liveness",
        ProbeKind::Readiness => "Readiness",
        ProbeKind::Startup => "Startup",
    }
}

/// Probes once: `Some((healthy, message))`, or `None` when the probe could not run (its result is thrown away).
pub(crate) async fn probe(kind: ProbeKind, spec: &Probe, probed: &Probed, events: &Events) -> Option<(bool, String)> {
    let mut last_error = String::new();
    let mut outcome = None;
    for _ in 0..MAX_ATTEMPTS {
        match run(spec, probed).await {
            Ok(o) => {
                outcome = Some(o);
                break;
            }
            Err(e) => last_error = e,
        }
    }
    let name = kind_name(kind);
    match outcome {
        None => {
            tracing::debug!(probe = name, container = %probed.container.name, error = %last_error, "probe errored");
            events.warn(
                probed,
                "Unhealthy",
                format!("{name} probe errored and resulted in unknown state: {last_error}"),
            );
            None
        }
        Some(Outcome::Success(_)) => Some((true, String::new())),
        Some(Outcome::Warning(output)) => {
            events.warn(probed, "ProbeWarning", format!("{name} probe warning: {output}"));
            Some((true, String::new()))
        }
        Some(Outcome::Failure(output)) => {
            tracing::debug!(probe = name, container = %probed.container.name, %output, "probe failed");
            events.warn(probed, "Unhealthy", format!("{name} probe failed: {output}"));
            Some((false, output))
        }
    }
}

/// The probe's timeout: `timeoutSeconds`, 1 when unset.
pub(crate) fn timeout(spec: &Probe) -> Duration {
    Duration::from_secs(spec.timeout_seconds.filter(|t| *t > 0).map_or(1, |t| t as u64))
}

/// Runs the probe's action once.
async fn run(spec: &Probe, probed: &Probed) -> Result<Outcome, Errored> {
    let timeout = timeout(spec);
    if let Some(action) = &spec.exec {
        let cmd = exec::expand(
            action.command.as_deref().unwrap_or_default(),
            probed.container.env.as_deref().unwrap_or_default(),
        );
        return match probed.exec.exec_sync(&probed.container_id, &cmd, timeout).await {
            Ok(out) if out.exit_code == 0 => Ok(Outcome::Success(exec::truncate_output(out.combined()))),
            Ok(out) => Ok(Outcome::Failure(exec::truncate_output(out.combined()))),
            Err(ExecError::TimedOut(message)) => Ok(Outcome::Failure(message)),
            Err(ExecError::Runtime(e)) => Err(e),
        };
    }
    if let Some(action) = &spec.http_get {
        let request = http::Request::new(action, &probed.container, &probed.pod_ip, "probe")?;
        return http::probe(&request, timeout).await;
    }
    if let Some(action) = &spec.tcp_socket {
        let port = port::resolve(&action.port, &probed.container)?;
        let host = action.host.as_deref().filter(|h| !h.is_empty()).unwrap_or(&probed.pod_ip);
        return Ok(tcp::probe(host, port, timeout).await);
    }
    if let Some(action) = &spec.grpc {
        let port = u16::try_from(action.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!("invalid port number: {}", action.port))?;
        let service = action.service.as_deref().unwrap_or("");
        return Ok(grpc::probe(&probed.pod_ip, port, service, timeout).await);
    }
    Err(format!("missing probe handler for {}:{}", crate::gostr::pod(&probed.pod), probed.container.name))
}
