//! Compaction, and finding out how far etcd's history has been compacted.
//!
//! etcd has no request that returns its compacted revision. Upstream's apiserver writes it to a key
//! (`compact_rev_key`) as it compacts; that costs a revision per compaction and misses compactions done by anyone
//! else (etcd's `--auto-compaction-*`, `etcdctl compact`, another apiserver). This backend asks etcd instead:
//! a read at revision `r` fails with "required revision has been compacted" exactly when `r` is below the compacted
//! revision, so the compacted revision is the lowest readable one. The client remembers the highest value it has
//! learnt (from its own compactions, from watches told of compaction, from earlier searches): one read at that
//! revision confirms it is still current, and only when someone else compacted further does a binary search over
//! the revisions since then run (about log2 of the writes since, e.g. 17 reads after 100k writes). No key is written.

use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::CompactionOptions;
use rkube_store::{Error, Result, Revision};

use crate::conn::{Conn, Failure, Member, Retry};

/// Physical compaction of a large history takes a while; wait for it longer than for ordinary requests.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(600);

impl Conn {
    /// Records a compacted revision learnt from etcd; the value only moves forward.
    pub(crate) fn learn_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::SeqCst);
    }

    pub(crate) async fn compacted_revision(&self) -> Result<Revision> {
        // Compaction only moves forward, and never past the current revision. Retried because a compaction
        // running meanwhile can move it past the bound just read.
        for _ in 0..5 {
            let known = self.compacted.load(Ordering::SeqCst);
            // Revision 0 means "current" to etcd, so start probing at 1.
            let mut lo = known.max(1);
            if self.readable(lo).await? {
                return Ok(known);
            }
            let mut hi = self.current_revision().await?;
            if hi <= lo || !self.readable(hi).await? {
                continue;
            }
            // Invariant: `lo` is compacted away, `hi` is readable; the compacted revision is the lowest readable one.
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.readable(mid).await? {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            self.learn_compacted(hi);
            return Ok(hi);
        }
        Err(Error::Backend {
            location: self.ctx.location.clone(),
            message: "reading the compacted revision: etcd's compaction kept moving while it was read; retry"
                .to_owned(),
            source: None,
        })
    }

    pub(crate) async fn compact(&self, revision: Revision) -> Result<()> {
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            async move { kv.compact(revision, Some(CompactionOptions::new().with_physical())).await }
        };
        // Not retried once sent: a compaction that was applied would be answered "compacted" the second time.
        match self.request(|| format!("compact at revision {revision}"), COMPACT_TIMEOUT, Retry::IfUnsent, call).await {
            Ok(_) => {
                self.learn_compacted(revision);
                Ok(())
            }
            // etcd refuses a compaction at or below the compacted revision with the same "compacted" error.
            Err(Failure::Compacted(_)) => {
                Err(Error::Expired { requested: revision, compacted: self.compacted_revision().await? })
            }
            Err(Failure::FutureRevision(_)) => {
                Err(Error::FutureRevision { requested: revision, current: self.current_revision().await? })
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// Fails with [`Error::Expired`] if a watch could not deliver every change after `after`:
    /// as the memory store, when `after` is below the compacted revision.
    pub(crate) async fn check_watchable(&self, after: Revision) -> Result<()> {
        let ok = if after >= 1 { self.readable(after).await? } else { self.compacted_revision().await? == 0 };
        if ok {
            return Ok(());
        }
        Err(Error::Expired { requested: after, compacted: self.compacted_revision().await? })
    }
}
