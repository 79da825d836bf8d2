//! `/stats/summary`: the node (host CPU, memory, filesystems, image filesystem, process limits) and every
//! ready pod with its containers, in upstream's Summary API JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use rkube_cri::api;
use serde_json::{Value, json};

use super::{pods, v};
use crate::failure::Failure;
use crate::host;
use crate::state::State;

fn time(ns: i64) -> String {
    jiff::Timestamp::from_second(ns.div_euclid(1_000_000_000)).map(|t| t.to_string()).unwrap_or_default()
}

fn cpu_json(c: &api::CpuUsage) -> Value {
    json!({"time": time(c.timestamp), "usageNanoCores": v(&c.usage_nano_cores), "usageCoreNanoSeconds": v(&c.usage_core_nano_seconds)})
}

fn memory_json(m: &api::MemoryUsage) -> Value {
    json!({
        "time": time(m.timestamp),
        "availableBytes": v(&m.available_bytes),
        "usageBytes": v(&m.usage_bytes),
        "workingSetBytes": v(&m.working_set_bytes),
        "rssBytes": v(&m.rss_bytes),
        "pageFaults": v(&m.page_faults),
        "majorPageFaults": v(&m.major_page_faults),
    })
}

fn fs_json(now: &str, f: &host::Fs) -> Value {
    json!({
        "time": now, "availableBytes": f.available, "capacityBytes": f.capacity, "usedBytes": f.used,
        "inodesFree": f.inodes_free, "inodes": f.inodes, "inodesUsed": f.inodes.saturating_sub(f.inodes_free),
    })
}

fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            *x = without_nulls(std::mem::take(x));
        }
    } else if let Value::Array(a) = &mut v {
        for x in a.iter_mut() {
            *x = without_nulls(std::mem::take(x));
        }
    }
    v
}

/// The node's CPU: the cumulative counter and, from the previous sample, the current rate.
fn node_cpu(st: &State) -> (Option<u64>, Option<u64>) {
    let Some(total) = host::cpu_usage_ns() else { return (None, None) };
    let mut last = st.cpu_sample.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let rate = last.and_then(|(at, prev)| {
        let secs = now.duration_since(at).as_secs_f64();
        (secs > 0.0).then(|| (total.saturating_sub(prev) as f64 / secs) as u64)
    });
    *last = Some((now, total));
    (Some(total), rate)
}

pub(crate) async fn summary(AxState(st): AxState<Arc<State>>) -> Result<Response, Failure> {
    let pods = pods(&st).await?;
    let now_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or_default();
    let now = time(now_ns);
    let (cpu_total, cpu_rate) = node_cpu(&st);
    let mem = host::memory();
    let mut rt = st.runtime.images.clone();
    let image_fs =
        match st.metrics.runtime_op("image_fs_info", rt.image_fs_info(api::ImageFsInfoRequest::default())).await {
            Ok(r) => r.into_inner().image_filesystems.first().map(|f| {
                let mount = f.fs_id.as_ref().map(|i| i.mountpoint.clone()).unwrap_or_default();
                let mut j = host::fs(std::path::Path::new(&mount))
                    .map(|x| fs_json(&now, &x))
                    .unwrap_or_else(|| json!({"time": now}));
                j["usedBytes"] = json!(v(&f.used_bytes));
                j["inodesUsed"] = json!(v(&f.inodes_used));
                j
            }),
            Err(_) => None,
        };
    let root = if st.pod_logs_dir.exists() { st.pod_logs_dir.as_path() } else { std::path::Path::new("/") };
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0);
    let node = json!({
        "nodeName": st.node_name,
        "systemContainers": [],
        "startTime": host::boot_time().map(|s| time(s * 1_000_000_000)),
        "cpu": {"time": now, "usageNanoCores": cpu_rate, "usageCoreNanoSeconds": cpu_total},
        "memory": {
            "time": now, "availableBytes": mem.available, "usageBytes": mem.usage, "workingSetBytes": mem.working_set,
            "rssBytes": mem.rss, "pageFaults": mem.page_faults, "majorPageFaults": mem.major_page_faults,
        },
        "fs": host::fs(root).map(|f| fs_json(&now, &f)),
        "runtime": {"imageFs": image_fs},
        "rlimit": {
            "time": now,
            "maxpid": std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse::<u64>().ok()),
            "curproc": procs,
        },
    });
    let pods: Vec<Value> = pods
        .iter()
        .map(|p| {
            let containers: Vec<Value> = p
                .containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "startTime": time(c.start_ns),
                        "cpu": c.cpu.as_ref().map(cpu_json),
                        "memory": c.memory.as_ref().map(memory_json),
                        "rootfs": c.rootfs.as_ref().map(|f| json!({"time": time(f.timestamp), "usedBytes": v(&f.used_bytes), "inodesUsed": v(&f.inodes_used)})),
                    })
                })
                .collect();
            let network = p.network.as_ref().and_then(|n| {
                let d = n.default_interface.as_ref()?;
                let iface = |i: &api::NetworkInterfaceUsage| json!({"name": i.name, "rxBytes": v(&i.rx_bytes), "rxErrors": v(&i.rx_errors), "txBytes": v(&i.tx_bytes), "txErrors": v(&i.tx_errors)});
                let mut j = iface(d);
                j["time"] = json!(time(n.timestamp));
                j["interfaces"] = Value::Array(n.interfaces.iter().map(iface).collect());
                Some(j)
            });
            json!({
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "startTime": time(p.start_ns),
                "containers": containers,
                "cpu": p.cpu.as_ref().map(cpu_json),
                "memory": p.memory.as_ref().map(memory_json),
                "network": network,
                "process_stats": p.processes.map(|n| json!({"process_count": n})),
            })
        })
        .collect();
    let body = without_nulls(json!({"node": node, "pods": pods}));
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_nulls() {
        assert_eq!(time(1_700_000_000_900_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(without_nulls(json!({"a": null, "b": {"c": null, "d": 1}})), json!({"b": {"d": 1}}));
    }
}
