//! What a simulated-node process registers: how many nodes, their names, size, labels and taints, and how
//! often they heartbeat; plus the parsers the CLI uses for `k=v` labels and `k=v:Effect` taints.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

/// Called with the number of nodes registered so far (from 1 to `count`), for progress output.
pub type Progress = Arc<dyn Fn(usize) + Send + Sync>;

/// The nodes one simulated-node process registers and keeps alive.
#[derive(Clone)]
pub struct SimConfig {
    /// How many nodes (at least 1).
    pub count: usize,
    /// Node names are `<name_prefix><index>`.
    pub name_prefix: String,
    /// The index of the first node; several processes can share a prefix with disjoint index ranges.
    pub first_index: usize,
    /// `cpu` capacity (a quantity, e.g. `32` or `8000m`).
    pub cpu: String,
    /// `memory` capacity (e.g. `256Gi`).
    pub memory: String,
    /// `pods` capacity.
    pub pods: String,
    /// `ephemeral-storage` capacity.
    pub ephemeral_storage: String,
    /// Labels added to the usual kubelet ones (they win over them).
    pub labels: BTreeMap<String, String>,
    /// Taints every node registers with.
    pub taints: Vec<Taint>,
    /// `spec.leaseDurationSeconds` of each node's Lease.
    pub lease_duration_seconds: i32,
    /// How often each Lease is renewed (upstream: a quarter of the lease duration).
    pub renew_interval: Duration,
    /// How often the Ready condition's heartbeat is refreshed when nothing changed (upstream's kubelet:
    /// `nodeStatusReportFrequency`, 5 minutes).
    pub status_report_interval: Duration,
    /// Requests in flight at most (registration, lease renewals, pod status writes together).
    pub max_in_flight: usize,
    /// Pod workers (each handles one pod at a time).
    pub pod_workers: usize,
    /// Called after each node registration.
    pub progress: Option<Progress>,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("count", &self.count)
            .field("name_prefix", &self.name_prefix)
            .field("first_index", &self.first_index)
            .field("cpu", &self.cpu)
            .field("memory", &self.memory)
            .field("pods", &self.pods)
            .field("ephemeral_storage", &self.ephemeral_storage)
            .field("labels", &self.labels)
            .field("taints", &self.taints)
            .field("lease_duration_seconds", &self.lease_duration_seconds)
            .field("renew_interval", &self.renew_interval)
            .field("status_report_interval", &self.status_report_interval)
            .field("max_in_flight", &self.max_in_flight)
            .field("pod_workers", &self.pod_workers)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 1,
            name_prefix: "sim-".into(),
            first_index: 0,
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            lease_duration_seconds: 40,
            renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
            max_in_flight: 64,
            pod_workers: 64,
            progress: None,
        }
    }
}

/// One more than the largest node index: the stand-in pod ranges (a /24 each from `10.201.0.0` to
/// `10.255.255.0`) run out there.
pub const MAX_INDEX: usize = 55 * 256;

impl SimConfig {
    /// The name of the node with index `i` (counting from `first_index`).
    pub fn node_name(&self, i: usize) -> String {
        format!("{}{}", self.name_prefix, i)
    }

    /// The node indices this process owns.
    pub fn indices(&self) -> std::ops::Range<usize> {
        self.first_index..self.first_index + self.count
    }

    /// Checks everything that can be checked before contacting the server; all problems at once.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.count == 0 {
            problems.push("count must be at least 1".to_owned());
        }
        if self.first_index.saturating_add(self.count) > MAX_INDEX {
            problems.push(format!("node indices must stay below {MAX_INDEX} (first index + count)"));
        }
        let last = self.node_name(self.first_index + self.count.saturating_sub(1));
        if !is_dns_subdomain(&self.node_name(self.first_index)) || !is_dns_subdomain(&last) {
            problems.push(format!(
                "name prefix {:?} does not make valid node names (lowercase letters, digits, '-' and '.')",
                self.name_prefix
            ));
        }
        for (what, v) in [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("pods", &self.pods),
            ("ephemeral storage", &self.ephemeral_storage),
        ] {
            match rkube_validation::Quantity::parse(v) {
                Ok(q) if q.is_negative() => problems.push(format!("{what} {v:?} must not be negative")),
                Ok(_) => {}
                Err(e) => problems.push(format!("{what} {v:?}: {e}")),
            }
        }
        if self.lease_duration_seconds <= 0 {
            problems.push("lease duration must be at least 1 second".to_owned());
        }
        if self.renew_interval.is_zero() {
            problems.push("renew interval must be more than 0".to_owned());
        }
        if self.max_in_flight == 0 || self.pod_workers == 0 {
            problems.push("max in flight and pod workers must be at least 1".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Parses `key=value` (a label to add).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("label {s:?} is not key=value"))?;
    if k.is_empty() {
        return Err(format!("label {s:?} has an empty key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Parses a taint as kubectl writes them: `key=value:Effect` or `key:Effect`, Effect one of `NoSchedule`,
/// `PreferNoSchedule`, `NoExecute`.
pub fn parse_taint(s: &str) -> Result<Taint, String> {
    let (kv, effect) =
        s.rsplit_once(':').ok_or_else(|| format!("taint {s:?} is not key=value:Effect (the effect is missing)"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!(
            "taint {s:?}: unknown effect {effect:?} (expected NoSchedule, PreferNoSchedule or NoExecute)"
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(format!("taint {s:?} has an empty key"));
    }
    if value.as_deref().is_some_and(|v| v.contains(['=', ':'])) {
        return Err(format!("taint {s:?}: the value must not contain '=' or ':'"));
    }
    Ok(Taint { key: key.to_owned(), value, effect: effect.to_owned(), time_added: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_taints() {
        let t = parse_taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!((t.key.as_str(), t.value.as_deref(), t.effect.as_str()), ("dedicated", Some("gpu"), "NoSchedule"));
        let t = parse_taint("example.com/special:NoExecute").unwrap();
        assert_eq!((t.key.as_str(), t.value, t.effect.as_str()), ("example.com/special", None, "NoExecute"));
        assert!(parse_taint("a=b").unwrap_err().contains("effect is missing"));
        assert!(parse_taint("a=b:Sometimes").unwrap_err().contains("unknown effect"));
        assert!(parse_taint("=b:NoSchedule").unwrap_err().contains("empty key"));
        assert!(parse_taint("a=b=c:NoSchedule").is_err());
    }

    #[test]
    fn parses_labels() {
        assert_eq!(parse_label("zone=a").unwrap(), ("zone".into(), "a".into()));
        assert_eq!(parse_label("empty=").unwrap(), ("empty".into(), "".into()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn validates() {
        assert!(SimConfig::default().validate().is_ok());
        let bad = SimConfig { count: 0, cpu: "lots".into(), name_prefix: "Sim_".into(), ..Default::default() };
        let e = bad.validate().unwrap_err();
        assert!(e.contains("count must be at least 1"), "{e}");
        assert!(e.contains("cpu \"lots\""), "{e}");
        assert!(e.contains("name prefix"), "{e}");
        assert_eq!(SimConfig { first_index: 5, ..Default::default() }.node_name(7), "sim-7");
    }
}
