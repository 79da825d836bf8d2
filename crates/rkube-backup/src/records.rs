//! `store.kv`, the objects of a snapshot: after a magic line, one record per key — key length (u32, big-endian),
//! key, value length (u32), value, create revision (i64), mod revision (i64). Binary rather than JSON lines because
//! values are opaque bytes to the store; the manifest's checksum and object count catch damage and truncation.

use std::io::{self, Read, Write};

use rkube_store::KeyValue;
use sha2::{Digest, Sha256};

/// The first bytes of every `store.kv`.
const MAGIC: &[u8] = b"rkube-kv 1\n";
/// Longer keys are refused on reading, so a damaged length cannot make the reader allocate gigabytes.
const MAX_KEY: usize = 64 << 10;
/// Likewise for values: well above the store's own limit.
const MAX_VALUE: usize = 4 * rkube_store::MAX_VALUE_SIZE;

/// Writes records, counting them and hashing every byte written.
pub(crate) struct RecordWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
    bytes: u64,
}

impl<W: Write> RecordWriter<W> {
    /// Starts a `store.kv` on `inner` (writes the magic line).
    pub(crate) fn new(inner: W) -> io::Result<Self> {
        let mut w = RecordWriter { inner, hasher: Sha256::new(), count: 0, bytes: 0 };
        w.put(MAGIC)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    /// Appends one key-value.
    pub(crate) fn write(&mut self, kv: &KeyValue) -> io::Result<()> {
        let too_long =
            |what| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} of {:?} is too long", kv.key));
        self.put(&u32::try_from(kv.key.len()).map_err(|_| too_long("the key"))?.to_be_bytes())?;
        self.put(kv.key.as_bytes())?;
        self.put(&u32::try_from(kv.value.len()).map_err(|_| too_long("the value"))?.to_be_bytes())?;
        self.put(&kv.value)?;
        self.put(&kv.create_revision.to_be_bytes())?;
        self.put(&kv.mod_revision.to_be_bytes())?;
        self.count += 1;
        Ok(())
    }

    /// Flushes; returns the writer, the record count, the byte count and the hex SHA-256 of everything written.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64, u64, String)> {
        self.inner.flush()?;
        Ok((self.inner, self.count, self.bytes, hex(&self.hasher.finalize())))
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads records back; every failure is [`io::ErrorKind::InvalidData`] or the underlying read error.
pub(crate) struct RecordReader<R: Read> {
    inner: R,
}

impl<R: Read> RecordReader<R> {
    /// Checks the magic line.
    pub(crate) fn new(mut inner: R) -> io::Result<Self> {
        let mut magic = [0u8; MAGIC.len()];
        inner.read_exact(&mut magic).map_err(|_| invalid("store.kv is shorter than its header"))?;
        if magic != MAGIC {
            return Err(invalid("store.kv does not start with the rkube-kv 1 header"));
        }
        Ok(RecordReader { inner })
    }

    /// The next record, or `None` at a clean end.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<KeyValue>> {
        let mut len = [0u8; 4];
        match read_full(&mut self.inner, &mut len)? {
            0 => return Ok(None),
            4 => {}
            _ => return Err(invalid("store.kv ends inside a record")),
        }
        let key = self.bytes(u32::from_be_bytes(len) as usize, MAX_KEY, "key")?;
        let key = String::from_utf8(key).map_err(|_| invalid("a key in store.kv is not UTF-8"))?;
        self.exact(&mut len)?;
        let value = self.bytes(u32::from_be_bytes(len) as usize, MAX_VALUE, "value")?;
        let mut rev = [0u8; 8];
        self.exact(&mut rev)?;
        let create_revision = i64::from_be_bytes(rev);
        self.exact(&mut rev)?;
        let mod_revision = i64::from_be_bytes(rev);
        Ok(Some(KeyValue { key, value, create_revision, mod_revision }))
    }

    fn exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid("store.kv ends inside a record"),
            _ => e,
        })
    }

    fn bytes(&mut self, len: usize, max: usize, what: &str) -> io::Result<Vec<u8>> {
        if len > max {
            return Err(invalid(&format!("a {what} in store.kv claims {len} bytes, more than any rkube writes")));
        }
        let mut buf = vec![0u8; len];
        self.exact(&mut buf)?;
        Ok(buf)
    }
}

impl<R: Read> Iterator for RecordReader<R> {
    type Item = io::Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8], rev: i64) -> KeyValue {
        KeyValue { key: key.into(), value: value.to_vec(), create_revision: rev - 1, mod_revision: rev }
    }

    #[test]
    fn records_round_trip_and_truncation_is_caught() {
        let items = vec![kv("/registry/a", b"{\"x\":1}", 5), kv("/registry/b", &[0, 255, 7], 9), kv("/r/c", b"", 2)];
        let mut w = RecordWriter::new(Vec::new()).expect("new");
        for i in &items {
            w.write(i).expect("write");
        }
        let (bytes, count, size, sum) = w.finish().expect("finish");
        assert_eq!((count, size as usize, sum.len()), (3, bytes.len(), 64));
        let back: Vec<_> = RecordReader::new(&bytes[..]).expect("header").collect::<io::Result<_>>().expect("read");
        assert_eq!(back, items);
        for cut in [bytes.len() - 1, MAGIC.len() + 3, MAGIC.len() + 20] {
            let r = RecordReader::new(&bytes[..cut]).expect("header").collect::<io::Result<Vec<_>>>();
            assert_eq!(r.expect_err("truncated").kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        assert!(RecordReader::new(&b"garbage that is long"[..]).is_err());
    }

    #[test]
    fn absurd_lengths_are_refused_without_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = RecordReader::new(&bytes[..]).expect("header").next_record().expect_err("absurd");
        assert!(err.to_string().contains("claims"), "{err}");
    }
}
