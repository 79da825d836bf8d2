//! The worker side shared by both controllers: keys come off a client-go style work queue, one sync per
//! key at a time; a failed sync comes back after the key's backoff, a successful one forgets it and may ask
//! to be looked at again after a delay.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rkube_client::queue::WorkQueue;

/// What a sync asks of the queue when it succeeds.
pub(crate) type Requeue = Option<Duration>;

/// A queue with the workers' retry policy (5 ms doubling to 1000 s, as client-go's default controller
/// rate limiter).
pub(crate) fn queue() -> Arc<WorkQueue<String>> {
    WorkQueue::new(Duration::from_millis(5), Duration::from_secs(1000))
}

/// Runs `workers` loops taking keys from `queue` and handing them to `sync`, until the queue shuts down.
pub(crate) async fn run<F, Fut>(name: &'static str, queue: Arc<WorkQueue<String>>, workers: usize, sync: F)
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = rkube_client::Result<Requeue>> + Send,
{
    let loops = (0..workers).map(|_| {
        let (queue, sync) = (queue.clone(), sync.clone());
        async move {
            while let Some(key) = queue.get().await {
                match sync(key.clone()).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(delay) = again {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(controller = name, key = %key, error = %e, "sync failed");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        }
    });
    futures::future::join_all(loops).await;
}

/// `namespace/name` of an object.
pub(crate) fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

/// The message of an API error as upstream's event texts show errors (the server's Status message).
pub(crate) fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
