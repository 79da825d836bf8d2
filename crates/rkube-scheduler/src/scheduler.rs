//! The scheduling loop: pop the next pod, run one attempt under the state lock (filters, scores, or
//! preemption), assume the pod on its node at once, and leave the API writes (binding, status, events,
//! victim deletions) to tasks so that scheduling never waits on the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use rkube_client::events::{EventType, Recorder};
use tokio::sync::{Notify, Semaphore, watch};

use crate::actions;
use crate::framework::CycleState;
use crate::informers::{self, Shared};
use crate::podinfo::PodInfo;
use crate::preemption::{self, Pdb};
use crate::queue::{ClusterEvent, Popped};
use crate::schedule::{self, NO_NODES};
use crate::state::{SCHEDULER_NAME, State};

/// How many bindings may be in flight at once.
const MAX_BINDS_IN_FLIGHT: usize = 256;

/// Throughput counters, logged every few seconds while there is work.
#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    bound: AtomicU64,
    failed: AtomicU64,
}

/// How often the counters are logged.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

async fn stats_loop(stats: Arc<Stats>, binds: Arc<Semaphore>, shared: Arc<Shared>) {
    let mut last = (0, 0, 0);
    let mut last_events = 0;
    loop {
        tokio::time::sleep(STATS_INTERVAL).await;
        let now = (
            stats.attempts.load(Ordering::Relaxed),
            stats.bound.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed),
        );
        if now != last {
            let secs = STATS_INTERVAL.as_secs_f64();
            let events = shared.events.load(Ordering::Relaxed);
            let (active, backoff, unschedulable, in_flight) = shared.lock().queue.counts();
            tracing::info!(
                attempts_per_s = ((now.0 - last.0) as f64 / secs).round(),
                bound_per_s = ((now.1 - last.1) as f64 / secs).round(),
                unschedulable_per_s = ((now.2 - last.2) as f64 / secs).round(),
                binds_in_flight = MAX_BINDS_IN_FLIGHT - binds.available_permits(),
                watch_events_per_s = ((events - last_events) as f64 / secs).round(),
                active,
                backoff,
                unschedulable,
                in_flight,
                "scheduler throughput"
            );
            last = now;
            last_events = events;
        }
    }
}

/// What one attempt decided.
enum Decision {
    Bind { pod: Arc<PodInfo>, node: String },
    Failed { pod: Arc<PodInfo>, message: String, nominate: Option<String>, victims: Vec<Arc<PodInfo>> },
}

/// One attempt for `popped`, under the lock.
fn attempt(st: &mut State, popped: Popped) -> Option<Decision> {
    let pod = popped.info;
    tracing::trace!(pod = %pod.key(), attempt = popped.attempts, "scheduling");
    if !st.queue.contains(&pod.uid) || pod.terminating() {
        return None;
    }
    let State { cache, nominations, picker, pdbs, queue, .. } = st;
    match schedule::schedule(&pod, cache, nominations, picker) {
        Ok(i) => {
            let node = cache.nodes[i].name.clone();
            cache.assume(pod.clone(), &node);
            st.clear_nomination(&pod.uid);
            Some(Decision::Bind { pod, node })
        }
        Err(diagnosis) => {
            queue.unschedulable(&pod.uid, popped.cycle, diagnosis.plugins());
            if cache.nodes.is_empty() {
                return Some(Decision::Failed {
                    pod,
                    message: NO_NODES.to_owned(),
                    nominate: None,
                    victims: Vec::new(),
                });
            }
            let pdb_list: Vec<Pdb> = pdbs.values().cloned().collect();
            let outcome = match CycleState::new(pod.clone(), cache) {
                Ok(state) => preemption::preempt(&state, cache, &diagnosis, nominations, &pdb_list, picker),
                Err(_) => Err(String::new()),
            };
            match outcome {
                Ok(candidate) => {
                    let message = diagnosis.message("");
                    st.nominate(pod.clone(), &candidate.node);
                    Some(Decision::Failed { pod, message, nominate: Some(candidate.node), victims: candidate.victims })
                }
                Err(post) => {
                    let message = diagnosis.message(&post);
                    Some(Decision::Failed { pod, message, nominate: None, victims: Vec::new() })
                }
            }
        }
    }
}

/// Runs the scheduler until `stop` is set.
pub(crate) async fn run(client: Client, mut stop: watch::Receiver<bool>) -> rkube_client::Result<()> {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let shared =
        Arc::new(Shared { state: Mutex::new(State::new(seed)), wake: Notify::new(), events: AtomicU64::new(0) });
    let recorder = Recorder::new(client.clone(), SCHEDULER_NAME, None);
    let (tasks, mut synced) = informers::start(&client, &shared);
    let _abort = AbortOnDrop(tasks);
    for rx in &mut synced {
        tokio::select! {
            _ = rx.wait_for(|s| *s) => {}
            _ = rkube_client::stopped(&mut stop) => return Ok(()),
        }
    }
    tracing::info!("scheduler caches synced");
    let flusher = tokio::spawn(flush_loop(shared.clone()));
    let _abort_flusher = AbortOnDrop(vec![flusher]);
    let binds = Arc::new(Semaphore::new(MAX_BINDS_IN_FLIGHT));
    let stats = Arc::new(Stats::default());
    let _abort_stats = AbortOnDrop(vec![tokio::spawn(stats_loop(stats.clone(), binds.clone(), shared.clone()))]);
    loop {
        let popped = loop {
            if let Some(p) = shared.lock().queue.pop() {
                break p;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = rkube_client::stopped(&mut stop) => return Ok(()),
            }
        };
        let decision = attempt(&mut shared.lock(), popped);
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        match decision {
            None => {}
            Some(Decision::Bind { pod, node }) => {
                let permit = tokio::select! {
                    p = binds.clone().acquire_owned() => p.ok(),
                    _ = rkube_client::stopped(&mut stop) => return Ok(()),
                };
                let (client, recorder, shared, stats) =
                    (client.clone(), recorder.clone(), shared.clone(), stats.clone());
                tokio::spawn(async move {
                    let result = actions::bind(&client, &pod, &node).await;
                    drop(permit);
                    if result.is_ok() {
                        stats.bound.fetch_add(1, Ordering::Relaxed);
                    }
                    bound(&shared, &recorder, pod, &node, result).await;
                });
            }
            Some(Decision::Failed { pod, message, nominate, victims }) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                let (client, recorder) = (client.clone(), recorder.clone());
                tokio::spawn(async move {
                    if let Some(node) = nominate.as_deref() {
                        let evictions =
                            victims.into_iter().map(|v| actions::preempt_victim(&client, &recorder, v, &pod.uid, node));
                        futures::future::join_all(evictions).await;
                    }
                    actions::record_failure(&client, &recorder, &pod, &message, nominate.as_deref()).await;
                });
            }
        }
    }
}

/// After a bind: on success the `Scheduled` event; on failure the pod is forgotten and retried.
async fn bound(shared: &Shared, recorder: &Recorder, pod: Arc<PodInfo>, node: &str, result: Result<(), kube::Error>) {
    match result {
        Ok(()) => {
            shared.lock().queue.delete(&pod.uid);
            let msg = format!("Successfully assigned {} to {node}", pod.key());
            recorder.record(pod.pod.as_ref(), EventType::Normal, "Scheduled", &msg).await;
        }
        Err(e) => {
            tracing::warn!(pod = %pod.key(), %node, error = %e, "binding failed");
            let mut st = shared.lock();
            st.cache.forget(&pod.uid);
            if rkube_client::api::is_not_found(&e) {
                st.queue.delete(&pod.uid);
            } else {
                st.queue.error(&pod.uid);
            }
            st.queue.move_all(ClusterEvent::Any);
            shared.kick(&st);
        }
    }
}

/// Moves pods whose backoff ended, and long-unschedulable pods, back to the active queue.
async fn flush_loop(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut st = shared.lock();
            let next = st.queue.flush(Instant::now());
            shared.kick(&st);
            next
        };
        let wait = next.map_or(Duration::from_secs(1), |n| n.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait.clamp(Duration::from_millis(50), Duration::from_secs(1))).await;
    }
}

/// Aborts background tasks when the scheduler stops.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
