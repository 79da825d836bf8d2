//! Bulk writes for `rkube restore` and `rkube migrate`: creating many keys in few transactions, and removing a
//! prefix again when a restore has to be undone.

use etcd_client::{Compare, CompareOp, DeleteOptions, Txn, TxnOp};
use rkube_store::{Error, Result, Revision, check_value_size};

use crate::EtcdStore;
use crate::conn::{Member, REQUEST_TIMEOUT, Retry};

/// Keys per transaction: half of etcd's default `--max-txn-ops` (128), which counts comparisons and puts apart.
const KEYS_PER_TXN: usize = 64;
/// Value bytes per transaction, below etcd's default `--max-request-bytes` (1.5 MiB) with room for keys.
const BYTES_PER_TXN: usize = 1 << 20;

impl EtcdStore {
    /// Creates every key of `items`, none of which may exist, in transactions of up to 64 keys (each all or
    /// nothing); returns the revision of the last one. A key that exists fails its transaction with
    /// [`Error::AlreadyExists`] naming the transaction's first key; the transactions before it stay written.
    pub async fn create_many(&self, items: &[(String, Vec<u8>)]) -> Result<Revision> {
        let mut revision = 0;
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < items.len() && end - start < KEYS_PER_TXN {
                let (key, value) = &items[end];
                check_value_size(key, value)?;
                if end > start && bytes + key.len() + value.len() > BYTES_PER_TXN {
                    break;
                }
                bytes += key.len() + value.len();
                end += 1;
            }
            revision = self.create_chunk(&items[start..end]).await?;
            start = end;
        }
        Ok(revision)
    }

    async fn create_chunk(&self, chunk: &[(String, Vec<u8>)]) -> Result<Revision> {
        let first = chunk.first().map(|(k, _)| k.as_str()).unwrap_or_default();
        let op = || format!("create {} keys from {first}", chunk.len());
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            let compares = chunk.iter().map(|(k, _)| Compare::create_revision(k.as_str(), CompareOp::Equal, 0));
            let puts = chunk.iter().map(|(k, v)| TxnOp::put(k.as_str(), v.clone(), None));
            let txn = Txn::new().when(compares.collect::<Vec<_>>()).and_then(puts.collect::<Vec<_>>());
            async move { kv.txn(txn).await }
        };
        let resp = self.conn.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0;
        if !resp.succeeded {
            return Err(Error::AlreadyExists { key: first.to_owned() });
        }
        resp.header.map(|h| h.revision).ok_or_else(|| Error::Backend {
            location: self.conn.ctx.location.clone(),
            message: format!("{}: etcd answered without a response header", op()),
            source: None,
        })
    }

    /// Deletes every key starting with `prefix` (which must not be empty); returns how many were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<i64> {
        if prefix.is_empty() {
            return Err(Error::Backend {
                location: self.conn.ctx.location.clone(),
                message: "refusing to delete every key of the cluster: the prefix is empty".into(),
                source: None,
            });
        }
        let op = || format!("delete every key under {prefix}");
        let call = |m: &Member| {
            let mut kv = m.kv.clone();
            async move { kv.delete(prefix, Some(DeleteOptions::new().with_prefix())).await }
        };
        Ok(self.conn.request(op, REQUEST_TIMEOUT, Retry::IfUnsent, call).await?.0.deleted)
    }
}
