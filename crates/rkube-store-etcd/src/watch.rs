//! Watches that outlive etcd restarts: one background task per watch that reconnects and resumes after the last
//! revision it delivered, so the consumer sees every change once, in order, or an error that ends the watch.

use std::time::{Duration, Instant};

use etcd_client::proto::{PbEvent, PbWatchResponse};
use etcd_client::{EventType, WatchOptions};
use futures::StreamExt;
use rkube_store::{Error, Event, EventKind, KeyValue, Result, Revision, WatchStream};
use tokio::sync::mpsc;

use crate::conn::{Conn, Member, REQUEST_TIMEOUT, Retry};
use crate::errors::chain;
use crate::kv::{range_end, to_key, to_kv};

/// Events buffered between etcd and a slow consumer; past that, the task stops reading and etcd holds the rest.
const CHANNEL_CAPACITY: usize = 256;
/// The first wait before reconnecting, doubled after each failure up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After this long without reaching etcd, the watch ends with the last error: a consumer (the API server's watch
/// cache) then lists and watches again, and reports the outage, rather than waiting silently forever.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// Starts watching `prefix` for changes after revision `after`.
pub(crate) async fn watch(conn: &Conn, prefix: &str, after: Revision) -> Result<WatchStream> {
    conn.check_watchable(after).await?;
    let stream = open(conn, prefix, after + 1).await?;
    let (tx, mut rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = Task { conn: conn.clone(), prefix: prefix.to_owned(), last: after, tx };
    tokio::spawn(task.run(stream));
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

/// Opens an etcd watch from revision `from` (inclusive) and waits for etcd to confirm it.
async fn open(conn: &Conn, prefix: &str, from: Revision) -> Result<etcd_client::WatchStream> {
    let options =
        WatchOptions::new().with_range(range_end(prefix.as_bytes())).with_start_revision(from).with_prev_key();
    let op = || format!("watch {prefix} from revision {from}");
    let call = |m: &Member| {
        let mut client = m.watch.clone();
        let options = options.clone();
        async move {
            let mut stream = client.watch(prefix, Some(options)).await?;
            // etcd answers a watch creation first with a "created" response; a compaction notice, if any, follows.
            let first = stream.message().await?;
            Ok((stream, first))
        }
    };
    let (stream, first) = conn.request(op, REQUEST_TIMEOUT, Retry::Idempotent, call).await?;
    match first {
        Some(resp) if resp.created() && !resp.canceled() => Ok(stream),
        Some(resp) if resp.compact_revision() > 0 => {
            conn.learn_compacted(resp.compact_revision());
            Err(Error::Expired { requested: from - 1, compacted: resp.compact_revision() })
        }
        Some(resp) => Err(Error::Backend {
            location: conn.ctx.location.clone(),
            message: format!("{}: etcd did not create the watch: {}", op(), resp.cancel_reason()),
            source: None,
        }),
        None => Err(Error::Unavailable {
            location: conn.ctx.location.clone(),
            message: format!("{}: etcd closed the watch stream before confirming it; check etcd's health", op()),
            source: None,
        }),
    }
}

/// Why reading one etcd watch stream stopped.
enum Stop {
    /// The consumer dropped its stream: nothing more to do.
    ConsumerGone,
    /// The stream broke (etcd restarted, the connection dropped): reconnect and resume.
    Disconnected(String),
    /// The watch cannot go on; this error is the consumer's last item.
    Fatal(Error),
}

struct Task {
    conn: Conn,
    prefix: String,
    /// The revision of the last event delivered (or the watch's starting point): the resume point.
    last: Revision,
    tx: mpsc::Sender<Result<Event>>,
}

impl Task {
    async fn run(mut self, mut stream: etcd_client::WatchStream) {
        loop {
            match self.pump(&mut stream).await {
                Stop::ConsumerGone => return,
                Stop::Fatal(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
                Stop::Disconnected(why) => {
                    tracing::warn!(prefix = %self.prefix, last = self.last, "etcd watch interrupted ({why}); reconnecting");
                    match self.reconnect().await {
                        Some(s) => stream = s,
                        None => return,
                    }
                }
            }
        }
    }

    /// Forwards events from one etcd watch stream until it stops.
    async fn pump(&mut self, stream: &mut etcd_client::WatchStream) -> Stop {
        let start = self.last + 1;
        loop {
            let msg = tokio::select! {
                _ = self.tx.closed() => return Stop::ConsumerGone,
                msg = stream.message() => msg,
            };
            let resp: PbWatchResponse = match msg {
                Ok(Some(resp)) => resp.0,
                Ok(None) => return Stop::Disconnected("etcd closed the watch stream".to_owned()),
                Err(e) => return Stop::Disconnected(chain(&e)),
            };
            if resp.compact_revision > 0 {
                self.conn.learn_compacted(resp.compact_revision);
                return Stop::Fatal(Error::Expired { requested: self.last, compacted: resp.compact_revision });
            }
            if resp.canceled {
                return Stop::Fatal(Error::Backend {
                    location: self.conn.ctx.location.clone(),
                    message: format!(
                        "watch {}: etcd canceled the watch: {}; watch again",
                        self.prefix, resp.cancel_reason
                    ),
                    source: None,
                });
            }
            for ev in resp.events {
                let event = match to_event(ev) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(why) => {
                        return Stop::Fatal(Error::Corrupt {
                            location: self.conn.ctx.location.clone(),
                            message: format!("watch {}: {why}", self.prefix),
                            source: None,
                        });
                    }
                };
                // etcd never sends a revision below the start it was given; checked so a misbehaving server cannot
                // make the consumer see a change twice.
                if event.revision() < start {
                    continue;
                }
                self.last = event.revision();
                if self.tx.send(Ok(event)).await.is_err() {
                    return Stop::ConsumerGone;
                }
            }
        }
    }

    /// Re-opens the watch after `last`, with backoff; `None` when the consumer is gone or the watch ended with an error.
    async fn reconnect(&mut self) -> Option<etcd_client::WatchStream> {
        let began = Instant::now();
        let mut delay = BACKOFF_START;
        loop {
            tokio::select! {
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            let attempt = async {
                self.conn.check_watchable(self.last).await?;
                open(&self.conn, &self.prefix, self.last + 1).await
            };
            match attempt.await {
                Ok(stream) => {
                    tracing::info!(prefix = %self.prefix, from = self.last + 1, "etcd watch resumed");
                    return Some(stream);
                }
                Err(e) if !e.is_unavailable() || began.elapsed() >= GIVE_UP_AFTER => {
                    let _ = self.tx.send(Err(e)).await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(prefix = %self.prefix, "etcd watch reconnect failed: {e}");
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// A store event from an etcd event; `Ok(None)` for an event without a key-value (nothing to report).
fn to_event(ev: PbEvent) -> std::result::Result<Option<Event>, String> {
    let Some(kv) = ev.kv else { return Ok(None) };
    if ev.r#type == EventType::Put as i32 {
        let kind = if kv.create_revision == kv.mod_revision { EventKind::Added } else { EventKind::Modified };
        let prev = if kind == EventKind::Added { None } else { ev.prev_kv.map(to_kv) };
        Ok(Some(Event { kind, kv: to_kv(kv), prev }))
    } else if ev.r#type == EventType::Delete as i32 {
        let prev = ev.prev_kv.map(to_kv);
        // As the memory store: the deleted key's last value, stamped with the deletion's revision. Without a previous
        // value (etcd omits it when that revision was compacted meanwhile) only the key and revision are known.
        let kv = match &prev {
            Some(p) => KeyValue { mod_revision: kv.mod_revision, ..p.clone() },
            None => {
                KeyValue { key: to_key(kv.key), value: Vec::new(), create_revision: 0, mod_revision: kv.mod_revision }
            }
        };
        Ok(Some(Event { kind: EventKind::Deleted, kv, prev }))
    } else {
        Err(format!("etcd sent an event of unknown type {} at revision {}", ev.r#type, kv.mod_revision))
    }
}

#[cfg(test)]
mod tests {
    use etcd_client::proto::PbKeyValue;

    use super::*;

    fn pb(key: &str, value: &str, create: i64, modified: i64) -> PbKeyValue {
        PbKeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: create,
            mod_revision: modified,
            ..Default::default()
        }
    }

    fn event(kind: EventType, kv: PbKeyValue, prev: Option<PbKeyValue>) -> PbEvent {
        PbEvent { r#type: kind as i32, kv: Some(kv), prev_kv: prev }
    }

    #[test]
    fn puts_are_added_or_modified_by_their_revisions() {
        let added = to_event(event(EventType::Put, pb("/k", "1", 5, 5), None)).expect("ok").expect("event");
        assert_eq!(added.kind, EventKind::Added);
        assert_eq!(added.prev, None);
        let modified = to_event(event(EventType::Put, pb("/k", "2", 5, 7), Some(pb("/k", "1", 5, 5))))
            .expect("ok")
            .expect("event");
        assert_eq!(modified.kind, EventKind::Modified);
        assert_eq!(modified.kv.value, b"2");
        assert_eq!(modified.prev.expect("prev").value, b"1");
    }

    #[test]
    fn deletions_carry_the_last_value_at_the_deletion_revision() {
        let tombstone = pb("/k", "", 0, 9);
        let ev = to_event(event(EventType::Delete, tombstone.clone(), Some(pb("/k", "last", 5, 7))))
            .expect("ok")
            .expect("event");
        assert_eq!(ev.kind, EventKind::Deleted);
        assert_eq!((ev.kv.value.as_slice(), ev.kv.create_revision, ev.kv.mod_revision), (&b"last"[..], 5, 9));
        assert_eq!(ev.prev.expect("prev").mod_revision, 7);
        // Without the previous value (compacted meanwhile): the key and the revision still tell what happened.
        let bare = to_event(event(EventType::Delete, tombstone, None)).expect("ok").expect("event");
        assert_eq!((bare.kv.key.as_str(), bare.kv.mod_revision, bare.prev), ("/k", 9, None));
    }

    #[test]
    fn unknown_event_types_are_errors_not_panics() {
        let mut ev = event(EventType::Put, pb("/k", "1", 1, 1), None);
        ev.r#type = 7;
        assert!(to_event(ev).is_err());
        let empty = PbEvent { r#type: 0, kv: None, prev_kv: None };
        assert!(to_event(empty).expect("ok").is_none());
    }
}
