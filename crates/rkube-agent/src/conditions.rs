//! The node's conditions with upstream's types, reasons and messages (kubelet_node_status.go / nodestatus
//! setters), and the rule for when a status must be posted.

use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Upstream's `nodeStatusReportFrequency`: an unchanged status is still posted this often.
pub const REPORT_EVERY_SECS: i64 = 5 * 60;

/// What the health checks found: each entry makes the node NotReady (upstream's runtime and network errors).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Why the node is not ready, in upstream's wording, e.g. `container runtime is down` or
    /// `container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:...`.
    pub errors: Vec<String>,
}

impl Health {
    /// The runtime could not be reached (or did not answer `Status`).
    pub fn runtime_down() -> Health {
        Health { errors: vec!["container runtime is down".to_owned()] }
    }

    /// From CRI `Status` conditions: `(type, status, reason, message)`.
    pub fn from_runtime_conditions<'a>(
        conditions: impl IntoIterator<Item = (&'a str, bool, &'a str, &'a str)>,
    ) -> Health {
        let mut runtime_seen = false;
        let mut network_seen = false;
        let mut errors = Vec::new();
        for (type_, status, reason, message) in conditions {
            match type_ {
                "RuntimeReady" => runtime_seen = true,
                "NetworkReady" => network_seen = true,
                _ => continue,
            }
            if !status {
                let what = if type_ == "RuntimeReady" { "" } else { " network" };
                errors.push(format!(
                    "container runtime{what} not ready: {type_}=false reason:{reason} message:{message}"
                ));
            }
        }
        // Upstream treats a missing condition as not ready (`the runtime did not report ...`).
        if !runtime_seen {
            errors.push("container runtime status check may not have completed yet".to_owned());
        }
        if !network_seen {
            errors.push("container runtime network not ready: NetworkReady condition not reported".to_owned());
        }
        Health { errors }
    }

    /// Whether the node is Ready.
    pub fn ready(&self) -> bool {
        self.errors.is_empty()
    }

    /// The Ready condition's message when not ready: one error as is, several as upstream's aggregate `[a, b]`.
    fn message(&self) -> String {
        match self.errors.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        }
    }
}

/// The four conditions at `now`, each keeping its `lastTransitionTime` from `previous` while its status holds.
pub fn build(health: &Health, now: Timestamp, previous: &[NodeCondition]) -> Vec<NodeCondition> {
    let ready = if health.ready() {
        ("True", "KubeletReady", "kubelet is posting ready status".to_owned())
    } else {
        ("False", "KubeletNotReady", health.message())
    };
    let all = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available".to_owned()),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure".to_owned()),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available".to_owned()),
        ("Ready", ready.0, ready.1, ready.2),
    ];
    all.into_iter()
        .map(|(type_, status, reason, message)| {
            let transition = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            NodeCondition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: Some(transition),
            }
        })
        .collect()
}

/// Whether `desired` must be posted over `posted` (what the server has): anything but heartbeat times
/// differs, or the last heartbeat is [`REPORT_EVERY_SECS`] old.
pub fn needs_post(posted: Option<&NodeStatus>, desired: &NodeStatus, now: Timestamp) -> bool {
    let Some(posted) = posted else { return true };
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    if strip(posted) != strip(desired) {
        return true;
    }
    let beat = posted
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.as_second())
        .min()
        .unwrap_or(0);
    now.as_second() - beat >= REPORT_EVERY_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn ready_and_not_ready_wording() {
        let ok = Health::from_runtime_conditions([("RuntimeReady", true, "", ""), ("NetworkReady", true, "", "")]);
        assert!(ok.ready());
        let c = build(&ok, t(100), &[]);
        assert_eq!(
            c.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert_eq!(c[3].reason.as_deref(), Some("KubeletReady"));
        assert_eq!(c[3].message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(c[0].reason.as_deref(), Some("KubeletHasSufficientMemory"));

        let net = Health::from_runtime_conditions([
            ("RuntimeReady", true, "", ""),
            (
                "NetworkReady",
                false,
                "NetworkPluginNotReady",
                "Network plugin returns error: cni plugin not initialized",
            ),
        ]);
        let c = build(&net, t(100), &[]);
        assert_eq!(c[3].status, "False");
        assert_eq!(c[3].reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            c[3].message.as_deref(),
            Some(
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady \
                 message:Network plugin returns error: cni plugin not initialized"
            )
        );
        let down = build(&Health::runtime_down(), t(100), &[]);
        assert_eq!(down[3].message.as_deref(), Some("container runtime is down"));
        let two = Health { errors: vec!["a".into(), "b".into()] };
        assert_eq!(build(&two, t(1), &[])[3].message.as_deref(), Some("[a, b]"));
    }

    #[test]
    fn transitions_kept_while_status_holds() {
        let first = build(&Health::runtime_down(), t(100), &[]);
        let again = build(&Health::runtime_down(), t(110), &first);
        assert_eq!(again[3].last_transition_time, Some(Time(t(100))));
        assert_eq!(again[3].last_heartbeat_time, Some(Time(t(110))));
        let ready = build(&Health::default(), t(120), &again);
        assert_eq!(ready[3].last_transition_time, Some(Time(t(120))));
        assert_eq!(ready[0].last_transition_time, Some(Time(t(100))));
    }

    #[test]
    fn posts_on_change_or_every_five_minutes() {
        let status = |h: &Health, now, prev: &[NodeCondition]| NodeStatus {
            conditions: Some(build(h, now, prev)),
            ..NodeStatus::default()
        };
        let posted = status(&Health::default(), t(1000), &[]);
        let prev = posted.conditions.clone().unwrap();
        assert!(needs_post(None, &posted, t(1000)));
        assert!(!needs_post(Some(&posted), &status(&Health::default(), t(1010), &prev), t(1010)));
        assert!(needs_post(Some(&posted), &status(&Health::runtime_down(), t(1010), &prev), t(1010)));
        assert!(needs_post(Some(&posted), &status(&Health::default(), t(1300), &prev), t(1300)));
    }
}
