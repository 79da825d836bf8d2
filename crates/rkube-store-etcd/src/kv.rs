//! Reads and compare-and-swap writes: each store operation as one etcd range, delete or transaction.

use etcd_client::proto::{PbKeyValue, PbRangeResponse, PbResponseHeader, PbTxnOpResponse, PbTxnResponse};
use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};
use rkube_store::{Error, KeyValue, ListOptions, ListResult, Result, Revision, check_value_size};

use crate::conn::{Conn, Failure, Member, REQUEST_TIMEOUT, Retry};

/// The end of etcd's range for every key starting with `prefix` (etcd's own prefix rule: the prefix with its last
/// byte below 0xff incremented), or `\0` (to the end of the keyspace) for an empty prefix.
pub(crate) fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A store key-value from etcd's. Keys rkube writes are UTF-8; a foreign non-UTF-8 key is shown lossily, not refused,
/// so that one odd key cannot make a whole list fail.
pub(crate) fn to_kv(kv: PbKeyValue) -> KeyValue {
    KeyValue {
        key: to_key(kv.key),
        value: kv.value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
    }
}

pub(crate) fn to_key(key: Vec<u8>) -> String {
    String::from_utf8(key).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A range over a single key that matches nothing rkube writes, for requests that only want the header.
const PROBE_KEY: &[u8] = &[0];

impl Conn {
    fn header_revision(&self, op: &str, header: Option<PbResponseHeader>) -> Result<Revision> {
        header.map(|h| h.revision).ok_or_else(|| Error::Backend {
            location: self.ctx.location.clone(),
            message: format!("{op}: etcd answered without a response header"),
            source: None,
        })
    }

    /// The etcd answer to a transaction's `i`th range operation.
    fn txn_range(&self, op: &str, resp: &mut PbTxnResponse, i: usize) -> Result<PbRangeResponse> {
        match resp.responses.get_mut(i).and_then(|r| r.response.take()) {
            Some(PbTxnOpResponse::ResponseRange(r)) => Ok(r),
            _ => Err(self.malformed(op)),
        }
    }

    fn malformed(&self, op: &str) -> Error {
        Error::Backend {
            location: self.ctx.location.clone(),
            message: format!("{op}: etcd's transaction answer lacks the expected operation results"),
            source: None,
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            async move { kv.get(key, None).await }
        };
        let resp = self.request(|| format!("get {key}"), REQUEST_TIMEOUT, Retry::Idempotent, call).await?;
        Ok(resp.0.kvs.into_iter().next().map(to_kv))
    }

    pub(crate) async fn current_revision(&self) -> Result<Revision> {
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            async move { kv.get(PROBE_KEY, Some(GetOptions::new().with_count_only())).await }
        };
        let resp =
            self.request(|| "read the current revision".to_owned(), REQUEST_TIMEOUT, Retry::Idempotent, call).await?;
        self.header_revision("read the current revision", resp.0.header)
    }

    /// Whether `revision` can still be read: false if it was compacted. A future revision counts as readable
    /// (nothing above the current revision can have been compacted).
    pub(crate) async fn readable(&self, revision: Revision) -> Result<bool> {
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            async move { kv.get(PROBE_KEY, Some(GetOptions::new().with_count_only().with_revision(revision))).await }
        };
        match self.request(|| format!("read at revision {revision}"), REQUEST_TIMEOUT, Retry::Idempotent, call).await {
            Ok(_) | Err(Failure::FutureRevision(_)) => Ok(true),
            Err(Failure::Compacted(_)) => Ok(false),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    pub(crate) async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let at = opts.revision.filter(|r| *r > 0);
        let start = opts.start.as_deref().filter(|s| *s > prefix).unwrap_or(prefix);
        let mut options = GetOptions::new().with_range(range_end(prefix.as_bytes()));
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(rev) = at {
            options = options.with_revision(rev);
        }
        let op = || format!("list {prefix} from {start:?} at revision {}", at.unwrap_or(0));
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            let options = options.clone();
            async move { kv.get(start, Some(options)).await }
        };
        let resp = match self.request(op, REQUEST_TIMEOUT, Retry::Idempotent, call).await {
            Ok(r) => r.0,
            Err(Failure::Compacted(_)) => {
                let requested = at.unwrap_or(0);
                return Err(Error::Expired { requested, compacted: self.compacted_revision().await? });
            }
            Err(Failure::FutureRevision(_)) => {
                let requested = at.unwrap_or(0);
                return Err(Error::FutureRevision { requested, current: self.current_revision().await? });
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        let revision = match at {
            Some(rev) => rev,
            None => self.header_revision(&op(), resp.header)?,
        };
        Ok(ListResult { items: resp.kvs.into_iter().map(to_kv).collect(), revision, more: resp.more })
    }

    pub(crate) async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let op = || format!("create {key}");
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            let txn = Txn::new().when([Compare::create_revision(key, CompareOp::Equal, 0)]).and_then([TxnOp::put(
                key,
                value.clone(),
                None,
            )]);
            async move { kv.txn(txn).await }
        };
        let resp = self.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0;
        if !resp.succeeded {
            return Err(Error::AlreadyExists { key: key.to_owned() });
        }
        let rev = self.header_revision(&op(), resp.header)?;
        Ok(KeyValue { key: key.to_owned(), value, create_revision: rev, mod_revision: rev })
    }

    pub(crate) async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let keys_only = || Some(GetOptions::new().with_keys_only());
        let op = || format!("update {key} at revision {expected}");
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            // A missing key has mod_revision 0: the create_revision guard keeps an update from creating it.
            let txn = Txn::new()
                .when([
                    Compare::create_revision(key, CompareOp::Greater, 0),
                    Compare::mod_revision(key, CompareOp::Equal, expected),
                ])
                .and_then([TxnOp::put(key, value.clone(), None), TxnOp::get(key, keys_only())])
                .or_else([TxnOp::get(key, keys_only())]);
            async move { kv.txn(txn).await }
        };
        let mut resp = self.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0;
        if !resp.succeeded {
            let current = self.txn_range(&op(), &mut resp, 0)?;
            return Err(match current.kvs.first() {
                Some(kv) => Error::Conflict { key: key.to_owned(), expected, actual: kv.mod_revision },
                None => Error::NotFound { key: key.to_owned() },
            });
        }
        let written = self.txn_range(&op(), &mut resp, 1)?;
        let stored = written.kvs.first().ok_or_else(|| self.malformed(&op()))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: stored.create_revision,
            mod_revision: stored.mod_revision,
        })
    }

    pub(crate) async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let op = || match expected {
            Some(rev) => format!("delete {key} at revision {rev}"),
            None => format!("delete {key}"),
        };
        let Some(expected) = expected else {
            let call = |m: &Member| {
                let mut kv = m.kv.clone();
                async move { kv.delete(key, Some(DeleteOptions::new().with_prev_key())).await }
            };
            let resp = self.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0;
            let prev = resp.prev_kvs.into_iter().next().ok_or_else(|| Error::NotFound { key: key.to_owned() })?;
            return Ok((to_kv(prev), self.header_revision(&op(), resp.header)?));
        };
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            let txn = Txn::new()
                .when([
                    Compare::create_revision(key, CompareOp::Greater, 0),
                    Compare::mod_revision(key, CompareOp::Equal, expected),
                ])
                .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
                .or_else([TxnOp::get(key, Some(GetOptions::new().with_keys_only()))]);
            async move { kv.txn(txn).await }
        };
        let mut resp = self.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0;
        if !resp.succeeded {
            let current = self.txn_range(&op(), &mut resp, 0)?;
            return Err(match current.kvs.first() {
                Some(kv) => Error::Conflict { key: key.to_owned(), expected, actual: kv.mod_revision },
                None => Error::NotFound { key: key.to_owned() },
            });
        }
        let deleted = match resp.responses.get_mut(0).and_then(|r| r.response.take()) {
            Some(PbTxnOpResponse::ResponseDeleteRange(d)) => d,
            _ => return Err(self.malformed(&op())),
        };
        let prev = deleted.prev_kvs.into_iter().next().ok_or_else(|| Error::NotFound { key: key.to_owned() })?;
        Ok((to_kv(prev), self.header_revision(&op(), resp.header)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_covers_exactly_the_prefix() {
        assert_eq!(range_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(range_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(range_end(b"\xff"), vec![0]);
        assert_eq!(range_end(b""), vec![0]);
    }

    #[test]
    fn non_utf8_keys_are_shown_not_refused() {
        assert_eq!(to_key(b"/ok".to_vec()), "/ok");
        assert_eq!(to_key(vec![b'/', 0xff]), "/\u{fffd}");
    }
}
