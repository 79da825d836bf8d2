//! Protobuf wire format, the few primitives Kubernetes' protos use: varints, fixed64 and length-delimited fields.
//!
//! Hand-written rather than `prost::encoding` so the runtime needs no protobuf crate at all; the
//! format is small and its every malformation becomes a [`WireError`], never a panic.

/// What is wrong with the bytes at the wire level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes end inside a field.
    #[error("truncated")]
    Truncated,
    /// A varint longer than 10 bytes.
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    /// Wire types 3 and 4 (groups, unused since proto2) or 6 and 7 (undefined).
    #[error("unsupported wire type {0}")]
    WireType(u8),
    /// Field number 0, which protobuf reserves.
    #[error("field number 0")]
    ZeroTag,
}

/// One field's value as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, a message, a map entry or packed scalars.
    Len(&'a [u8]),
    /// Wire type 5 (no Kubernetes field uses it, but a reader must be able to skip it).
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type number, for error messages.
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            Self::Varint(_) => 0,
            Self::Fixed64(_) => 1,
            Self::Len(_) => 2,
            Self::Fixed32(_) => 5,
        }
    }
}

/// Reads (field number, value) pairs from a message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next field, or `None` at the end. On error, also the field number if it was read.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, (u32, WireError)> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint().map_err(|e| (0, e))?;
        let tag = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if tag == 0 {
            return Err((0, WireError::ZeroTag));
        }
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint().map_err(|e| (tag, e))?),
            1 => WireValue::Fixed64(u64::from_le_bytes(self.array().map_err(|e| (tag, e))?)),
            2 => {
                let len = self.varint().map_err(|e| (tag, e))?;
                let len = usize::try_from(len).map_err(|_| (tag, WireError::Truncated))?;
                if len > self.buf.len() {
                    return Err((tag, WireError::Truncated));
                }
                let (v, rest) = self.buf.split_at(len);
                self.buf = rest;
                WireValue::Len(v)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(self.array().map_err(|e| (tag, e))?)),
            t => return Err((tag, WireError::WireType(t as u8))),
        };
        Ok(Some((tag, value)))
    }

    /// A varint from the front of the buffer.
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(WireError::Truncated)?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    /// A little-endian 64-bit value from the front of the buffer (packed doubles).
    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, rest) = self.buf.split_first_chunk::<N>().ok_or(WireError::Truncated)?;
        self.buf = rest;
        Ok(*head)
    }
}

/// Appends a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key.
pub(crate) fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
pub(crate) fn put_len(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX, (-1i64) as u64] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn fields_of_every_wire_type() {
        let mut buf = Vec::new();
        put_key(&mut buf, 1, 0);
        put_varint(&mut buf, 150);
        put_key(&mut buf, 2, 1);
        buf.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        put_len(&mut buf, 3, b"hi");
        put_key(&mut buf, 4, 5);
        buf.extend_from_slice(&7u32.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field(), Ok(Some((1, WireValue::Varint(150)))));
        assert_eq!(r.next_field(), Ok(Some((2, WireValue::Fixed64(1.5f64.to_bits())))));
        assert_eq!(r.next_field(), Ok(Some((3, WireValue::Len(b"hi")))));
        assert_eq!(r.next_field(), Ok(Some((4, WireValue::Fixed32(7)))));
        assert_eq!(r.next_field(), Ok(None));
    }

    #[test]
    fn malformations_are_errors() {
        assert_eq!(Reader::new(&[0x0a, 5, b'a']).next_field(), Err((1, WireError::Truncated)));
        assert_eq!(Reader::new(&[0x08]).next_field(), Err((1, WireError::Truncated)));
        assert_eq!(Reader::new(&[0x09, 1, 2]).next_field(), Err((1, WireError::Truncated)));
        assert_eq!(Reader::new(&[0x0b]).next_field(), Err((1, WireError::WireType(3))));
        assert_eq!(Reader::new(&[0x00]).next_field(), Err((0, WireError::ZeroTag)));
        assert_eq!(
            Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).next_field(),
            Err((1, WireError::VarintTooLong))
        );
        assert_eq!(Reader::new(&[0x80]).next_field(), Err((0, WireError::Truncated)));
    }
}
