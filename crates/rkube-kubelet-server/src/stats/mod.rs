//! Node and pod statistics: `/stats/summary` (upstream's Summary API shape) and `/metrics/resource`
//! (upstream's resource metrics, what metrics-server and `kubectl top` read), from CRI's ListContainerStats
//! and ListPodSandboxStats and the host's own figures. This module collects; its children render.

mod resource;
mod summary;

pub(crate) use resource::resource_metrics;
pub(crate) use summary::summary;

use std::collections::HashMap;

use rkube_cri::api::{self, ContainerState, PodSandboxState};

use crate::failure::Failure;
use crate::state::State;

/// One container's figures.
pub(crate) struct ContainerSample {
    pub(crate) name: String,
    pub(crate) start_ns: i64,
    pub(crate) cpu: Option<api::CpuUsage>,
    pub(crate) memory: Option<api::MemoryUsage>,
    pub(crate) rootfs: Option<api::FilesystemUsage>,
}

/// One pod's figures.
pub(crate) struct PodSample {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) uid: String,
    pub(crate) start_ns: i64,
    pub(crate) containers: Vec<ContainerSample>,
    pub(crate) cpu: Option<api::CpuUsage>,
    pub(crate) memory: Option<api::MemoryUsage>,
    pub(crate) network: Option<api::NetworkUsage>,
    pub(crate) processes: Option<u64>,
}

pub(crate) fn v(x: &Option<api::UInt64Value>) -> Option<u64> {
    x.as_ref().map(|u| u.value)
}

pub(crate) fn u64v(x: u64) -> Option<api::UInt64Value> {
    Some(api::UInt64Value { value: x })
}

/// Pod figures from the sandbox's own stats, or summed from its containers when the runtime has none.
pub(crate) fn pod_totals(containers: &[ContainerSample]) -> (Option<api::CpuUsage>, Option<api::MemoryUsage>) {
    let cpus: Vec<&api::CpuUsage> = containers.iter().filter_map(|c| c.cpu.as_ref()).collect();
    let mems: Vec<&api::MemoryUsage> = containers.iter().filter_map(|c| c.memory.as_ref()).collect();
    let cpu = (!cpus.is_empty()).then(|| api::CpuUsage {
        timestamp: cpus.iter().map(|c| c.timestamp).max().unwrap_or_default(),
        usage_core_nano_seconds: u64v(cpus.iter().filter_map(|c| v(&c.usage_core_nano_seconds)).sum()),
        usage_nano_cores: u64v(cpus.iter().filter_map(|c| v(&c.usage_nano_cores)).sum()),
    });
    let memory = (!mems.is_empty()).then(|| api::MemoryUsage {
        timestamp: mems.iter().map(|m| m.timestamp).max().unwrap_or_default(),
        working_set_bytes: u64v(mems.iter().filter_map(|m| v(&m.working_set_bytes)).sum()),
        usage_bytes: u64v(mems.iter().filter_map(|m| v(&m.usage_bytes)).sum()),
        rss_bytes: u64v(mems.iter().filter_map(|m| v(&m.rss_bytes)).sum()),
        page_faults: u64v(mems.iter().filter_map(|m| v(&m.page_faults)).sum()),
        major_page_faults: u64v(mems.iter().filter_map(|m| v(&m.major_page_faults)).sum()),
        available_bytes: None,
    });
    (cpu, memory)
}

/// Every ready pod on the node with its running containers' figures.
pub(crate) async fn pods(st: &State) -> Result<Vec<PodSample>, Failure> {
    let mut rt = st.runtime.runtime.clone();
    let sandboxes = st
        .metrics
        .runtime_op("list_podsandbox", rt.list_pod_sandbox(api::ListPodSandboxRequest::default()))
        .await
        .map_err(|e| Failure::runtime("listing pod sandboxes", &e))?
        .into_inner()
        .items;
    let running = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: ContainerState::ContainerRunning as i32 }),
        ..Default::default()
    };
    let containers: HashMap<String, api::Container> = st
        .metrics
        .runtime_op("list_containers", rt.list_containers(api::ListContainersRequest { filter: Some(running) }))
        .await
        .map_err(|e| Failure::runtime("listing containers", &e))?
        .into_inner()
        .containers
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let cstats = st
        .metrics
        .runtime_op("list_container_stats", rt.list_container_stats(api::ListContainerStatsRequest::default()))
        .await
        .map_err(|e| Failure::runtime("listing container stats", &e))?
        .into_inner()
        .stats;
    // Older runtimes lack sandbox stats; the pod's figures are then its containers' sums.
    let sstats: HashMap<String, api::LinuxPodSandboxStats> = match st
        .metrics
        .runtime_op("list_podsandbox_stats", rt.list_pod_sandbox_stats(api::ListPodSandboxStatsRequest::default()))
        .await
    {
        Ok(r) => r.into_inner().stats.into_iter().filter_map(|s| Some((s.attributes?.id, s.linux?))).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "the runtime has no pod sandbox stats");
            HashMap::new()
        }
    };
    let mut by_sandbox: HashMap<String, Vec<ContainerSample>> = HashMap::new();
    for s in cstats {
        let Some(id) = s.attributes.as_ref().map(|a| a.id.clone()) else { continue };
        let Some(c) = containers.get(&id) else { continue };
        let name = c
            .labels
            .get(rkube_cri::labels::CONTAINER_NAME)
            .cloned()
            .unwrap_or_else(|| c.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default());
        by_sandbox.entry(c.pod_sandbox_id.clone()).or_default().push(ContainerSample {
            name,
            start_ns: c.created_at,
            cpu: s.cpu,
            memory: s.memory,
            rootfs: s.writable_layer,
        });
    }
    let mut out = Vec::new();
    for sb in sandboxes.into_iter().filter(|s| s.state == PodSandboxState::SandboxReady as i32) {
        let Some(meta) = sb.metadata else { continue };
        let mut containers = by_sandbox.remove(&sb.id).unwrap_or_default();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let (sum_cpu, sum_mem) = pod_totals(&containers);
        let own = sstats.get(&sb.id);
        out.push(PodSample {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            start_ns: sb.created_at,
            cpu: own.and_then(|s| s.cpu).or(sum_cpu),
            memory: own.and_then(|s| s.memory).or(sum_mem),
            network: own.and_then(|s| s.network.clone()),
            processes: own.and_then(|s| s.process.as_ref().and_then(|p| v(&p.process_count))),
            containers,
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}
