//! `containerLogs`: reads a container's CRI log file with upstream's options (`follow`, `tailLines`,
//! `sinceSeconds`/`sinceTime`, `timestamps`, `limitBytes`, `stream`) and streams whole lines to the client.
//! Following polls the file (a few times a second), ends once the container has exited and the file is
//! drained, and reopens the file if the runtime rotated it.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::logformat::{self, Assembler, Line, Stream};
use crate::query::Query;

/// How often a followed file is read again when it had nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How often, while a followed file is idle, the runtime is asked whether the container still runs.
const ALIVE_CHECK: Duration = Duration::from_secs(1);

/// The options of one log request (upstream's `PodLogOptions` as the kubelet reads them).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LogOptions {
    pub(crate) follow: bool,
    pub(crate) previous: bool,
    pub(crate) tail: Option<usize>,
    pub(crate) since: Option<Timestamp>,
    pub(crate) timestamps: bool,
    pub(crate) limit_bytes: Option<u64>,
    /// Only this stream (`stream=Stdout|Stderr`); `None` is both.
    pub(crate) stream: Option<Stream>,
}

impl LogOptions {
    /// Reads the options from the query; `now` anchors `sinceSeconds`.
    pub(crate) fn from_query(q: &Query, now: Timestamp) -> Result<LogOptions, String> {
        let since_seconds = q.number("sinceSeconds")?;
        let since_time = q.get("sinceTime").filter(|v| !v.is_empty());
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into()),
            (Some(0), None) => return Err("sinceSeconds: Invalid value: 0: must be greater than 0".into()),
            (Some(s), None) => {
                let secs = i64::try_from(s).unwrap_or(i64::MAX);
                Some(now.checked_sub(SignedDuration::from_secs(secs)).unwrap_or(Timestamp::MIN))
            }
            (None, Some(t)) => Some(t.parse().map_err(|e| format!("invalid sinceTime {t:?}: {e}"))?),
            (None, None) => None,
        };
        let stream = match q.get("stream").unwrap_or_default() {
            "" | "All" => None,
            "Stdout" => Some(Stream::Stdout),
            "Stderr" => Some(Stream::Stderr),
            other => {
                return Err(format!(
                    "stream: Unsupported value: {other:?}: supported values: \"All\", \"Stderr\", \"Stdout\""
                ));
            }
        };
        Ok(LogOptions {
            follow: q.flag("follow")?,
            previous: q.flag("previous")?,
            tail: q.number("tailLines")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            since,
            timestamps: q.flag("timestamps")?,
            limit_bytes: q.number("limitBytes")?,
            stream,
        })
    }
}

/// Asks the runtime whether the container still runs (follow ends once it does not).
pub(crate) type Alive = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send>;

/// Where lines go: applies the filters and the byte limit, and notices a client that went away.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    opts: LogOptions,
    sent: u64,
}

impl Sink {
    fn wanted(&self, line: &Line) -> bool {
        self.opts.stream.is_none_or(|s| s == line.stream) && self.opts.since.is_none_or(|t| line.time >= t)
    }

    /// Sends one line; `false` once nothing more may be sent (limit reached or client gone).
    async fn send(&mut self, line: &Line) -> bool {
        let mut bytes = line.render(self.opts.timestamps);
        if let Some(limit) = self.opts.limit_bytes {
            let room = limit.saturating_sub(self.sent);
            if room == 0 {
                return false;
            }
            bytes.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        self.sent += bytes.len() as u64;
        self.tx.send(Bytes::from(bytes)).await.is_ok() && self.opts.limit_bytes.is_none_or(|l| self.sent < l)
    }
}

/// Splits raw file bytes into lines, keeping an unfinished last line for the next read.
#[derive(Default)]
struct Splitter {
    carry: Vec<u8>,
    assembler: Assembler,
}

impl Splitter {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Line>) {
        self.carry.extend_from_slice(chunk);
        let Some(last_nl) = self.carry.iter().rposition(|b| *b == b'\n') else { return };
        let rest = self.carry.split_off(last_nl + 1);
        for raw in self.carry.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match logformat::parse(raw) {
                Ok(entry) => out.extend(self.assembler.push(&entry)),
                Err(e) => tracing::debug!(error = %e, "skipping a malformed log line"),
            }
        }
        self.carry = rest;
    }

    /// The end of the log: an unterminated last line counts, and partial entries are shown as they are.
    fn finish(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        if !self.carry.is_empty() {
            self.feed(b"\n", &mut out);
        }
        out.extend(self.assembler.flush());
        out
    }
}

/// Streams the log at `path` (already opened as `file`) into `tx` until done, the client leaves or `stop`.
pub(crate) async fn stream(
    path: PathBuf,
    mut file: tokio::fs::File,
    opts: LogOptions,
    mut alive: Alive,
    tx: mpsc::Sender<Bytes>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let follow = opts.follow;
    let tail = opts.tail;
    let mut sink = Sink { tx, opts, sent: 0 };
    let mut split = Splitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = Vec::new();

    // The file as it is now: with tailLines only the last lines that pass the filters are kept.
    let mut kept: VecDeque<Line> = VecDeque::new();
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        split.feed(&buf[..n], &mut lines);
        for line in lines.drain(..) {
            if !sink.wanted(&line) {
                continue;
            }
            match tail {
                Some(0) => {}
                Some(t) => {
                    if kept.len() == t {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
                None => {
                    if !sink.send(&line).await {
                        return Ok(());
                    }
                }
            }
        }
    }
    for line in kept.drain(..) {
        if !sink.send(&line).await {
            return Ok(());
        }
    }
    if !follow {
        for line in split.finish() {
            if sink.wanted(&line) && !sink.send(&line).await {
                break;
            }
        }
        return Ok(());
    }

    let mut ino = file.metadata().await.map(|m| inode(&m)).ok();
    let mut last_alive_check = Instant::now();
    let mut exited = false;
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            split.feed(&buf[..n], &mut lines);
            for line in lines.drain(..) {
                if sink.wanted(&line) && !sink.send(&line).await {
                    return Ok(());
                }
            }
            continue;
        }
        if exited {
            // The container had exited and the file is now drained.
            for line in split.finish() {
                if sink.wanted(&line) && !sink.send(&line).await {
                    break;
                }
            }
            return Ok(());
        }
        // Rotated: the path names a new file; what the old one still held has been read.
        let now_ino = tokio::fs::metadata(&path).await.map(|m| inode(&m)).ok();
        if now_ino.is_some()
            && now_ino != ino
            && let Ok(f) = tokio::fs::File::open(&path).await
        {
            file = f;
            ino = now_ino;
            continue;
        }
        if last_alive_check.elapsed() >= ALIVE_CHECK {
            last_alive_check = Instant::now();
            if !alive().await {
                // One more pass: the runtime may have written the last lines after our read.
                exited = true;
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = sink.tx.closed() => return Ok(()),
            _ = stop.changed() => return Ok(()),
        }
    }
}

fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const LOG: &str = "2020-01-01T00:00:01Z stdout F one\n\
                       2020-01-01T00:00:02Z stderr F two\n\
                       2020-01-01T00:00:03Z stdout P thr\n\
                       2020-01-01T00:00:04Z stdout F ee\n\
                       not a log line\n\
                       2020-01-01T00:00:05.5Z stdout F four\n";

    fn opts(query: &str) -> LogOptions {
        let now: Timestamp = "2020-01-01T00:00:10Z".parse().expect("now");
        LogOptions::from_query(&Query::parse(Some(query)), now).expect("options")
    }

    async fn read(content: &str, o: LogOptions) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, content).expect("write");
        let file = tokio::fs::File::open(&path).await.expect("open");
        let (tx, mut rx) = mpsc::channel(4);
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(stream(path, file, o, Box::new(|| Box::pin(async { false })), tx, stop));
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b);
        }
        task.await.expect("join").expect("stream");
        String::from_utf8(out).expect("utf8")
    }

    #[tokio::test]
    async fn options_and_filters() {
        assert_eq!(read(LOG, opts("")).await, "one\ntwo\nthree\nfour\n");
        assert_eq!(read(LOG, opts("tailLines=2")).await, "three\nfour\n");
        assert_eq!(read(LOG, opts("tailLines=0")).await, "");
        assert_eq!(read(LOG, opts("tailLines=10")).await, "one\ntwo\nthree\nfour\n");
        assert_eq!(read(LOG, opts("sinceTime=2020-01-01T00:00:02Z")).await, "two\nthree\nfour\n");
        // sinceSeconds counts back from now (00:00:10): 6 s back is 00:00:04, after `three` began.
        assert_eq!(read(LOG, opts("sinceSeconds=6")).await, "four\n");
        assert_eq!(read(LOG, opts("stream=Stderr")).await, "two\n");
        assert_eq!(read(LOG, opts("stream=Stdout&tailLines=1")).await, "four\n");
        assert_eq!(
            read(LOG, opts("timestamps=true&tailLines=2")).await,
            "2020-01-01T00:00:03Z three\n2020-01-01T00:00:05.5Z four\n"
        );
        assert_eq!(read(LOG, opts("limitBytes=6")).await, "one\ntw");
        assert_eq!(read(LOG, opts("limitBytes=4")).await, "one\n");
        // A partial line at the end of a finished log is still shown.
        assert_eq!(read("2020-01-01T00:00:01Z stdout P half", opts("")).await, "half");
    }

    #[test]
    fn option_errors() {
        let now = Timestamp::UNIX_EPOCH;
        let q = |s| LogOptions::from_query(&Query::parse(Some(s)), now);
        assert!(q("sinceSeconds=1&sinceTime=2020-01-01T00:00:00Z").expect_err("both").contains("at most one"));
        assert!(q("sinceSeconds=0").is_err());
        assert!(q("sinceTime=yesterday").is_err());
        assert!(q("stream=Both").is_err());
        assert!(q("follow=true&previous=1").expect("ok").follow);
    }

    async fn recv(rx: &mut mpsc::Receiver<Bytes>) -> Option<Bytes> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time")
    }

    #[tokio::test]
    async fn follow_streams_growth_and_ends_when_the_container_exits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2020-01-01T00:00:01Z stdout F first\n").expect("write");
        let file = tokio::fs::File::open(&path).await.expect("open");
        let running = Arc::new(AtomicBool::new(true));
        let r = running.clone();
        let alive: Alive = Box::new(move || {
            let r = r.clone();
            Box::pin(async move { r.load(Ordering::SeqCst) })
        });
        let (tx, mut rx) = mpsc::channel(4);
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(stream(path.clone(), file, opts("follow=true"), alive, tx, stop));
        assert_eq!(recv(&mut rx).await.expect("first").as_ref(), b"first\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("append");
        // Written in two pieces: the reader must not emit half an entry.
        f.write_all(b"2020-01-01T00:00:02Z stdout F sec").expect("write");
        f.flush().expect("flush");
        tokio::time::sleep(FOLLOW_POLL * 2).await;
        f.write_all(b"ond\n").expect("write");
        assert_eq!(recv(&mut rx).await.expect("second").as_ref(), b"second\n");
        // The container exits after writing a last line: it is delivered, then the stream ends.
        f.write_all(b"2020-01-01T00:00:03Z stdout F last\n").expect("write");
        running.store(false, Ordering::SeqCst);
        assert_eq!(recv(&mut rx).await.expect("last").as_ref(), b"last\n");
        assert!(recv(&mut rx).await.is_none(), "stream ends after the container exited");
        task.await.expect("join").expect("stream");
    }

    #[tokio::test]
    async fn follow_reopens_a_rotated_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2020-01-01T00:00:01Z stdout F old\n").expect("write");
        let file = tokio::fs::File::open(&path).await.expect("open");
        let (tx, mut rx) = mpsc::channel(4);
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(stream(
            path.clone(),
            file,
            opts("follow=true"),
            Box::new(|| Box::pin(async { true })),
            tx,
            stop,
        ));
        assert_eq!(rx.recv().await.expect("old").as_ref(), b"old\n");
        std::fs::rename(&path, dir.path().join("0.log.20200101-000001")).expect("rotate");
        std::fs::write(&path, "2020-01-01T00:00:02Z stdout F new\n").expect("write new");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time");
        assert_eq!(got.expect("new").as_ref(), b"new\n");
        stop_tx.send(true).expect("stop");
        task.await.expect("join").expect("stream");
    }
}
