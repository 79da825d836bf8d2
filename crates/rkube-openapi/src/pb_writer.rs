//! A minimal protobuf wire-format writer: varints, scalars, strings and length-delimited sub-messages.
//!
//! Only what the gnostic OpenAPI v2 messages need. Writes follow proto3's rules as Go's `proto.Marshal`
//! applies them to singular fields: zero values (empty string, `false`, `0`) are left out, so callers
//! emit fields in field-number order and get the same bytes upstream would.

/// Wire type of varint-encoded scalars (`bool`, `int64`).
const VARINT: u32 = 0;
/// Wire type of `double`.
const FIXED64: u32 = 1;
/// Wire type of strings, bytes and sub-messages.
const LEN: u32 = 2;

/// Builds one message in memory.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty message with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// The encoded message.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            // Truncation is the point: the low seven bits, with the continuation bit set.
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    /// A singular `string`; left out when empty.
    pub(crate) fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.string_always(field, s);
        }
    }

    /// One element of a `repeated string`: written even when empty, as repeated elements always are.
    pub(crate) fn string_always(&mut self, field: u32, s: &str) {
        self.tag(field, LEN);
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A singular `bool`; left out when false.
    pub(crate) fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.bool_always(field, b);
        }
    }

    /// A `bool` member of a `oneof`: set members are written even when false, or the choice would be lost.
    pub(crate) fn bool_always(&mut self, field: u32, b: bool) {
        self.tag(field, VARINT);
        self.varint(u64::from(b));
    }

    /// A singular `int64`; left out when zero. Negative values take ten bytes, as protobuf specifies.
    pub(crate) fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.tag(field, VARINT);
            // Two's complement reinterpretation is how protobuf encodes negative int64s.
            self.varint(v as u64);
        }
    }

    /// A singular `double`; left out when +0.0 (Go's test is on the bits, so -0.0 is written).
    pub(crate) fn double(&mut self, field: u32, v: f64) {
        if v.to_bits() != 0 {
            self.tag(field, FIXED64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A sub-message whose body `body` writes; always written, even when empty (a present message).
    ///
    /// The length is not known until the body is written. One byte is reserved for it, which suffices
    /// for most messages (under 128 bytes); longer ones move their body up by the extra length bytes.
    pub(crate) fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.tag(field, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        if len < 0x80 {
            self.buf[at] = len as u8;
            return;
        }
        let mut prefix = Writer::with_capacity(10);
        prefix.varint(len as u64);
        let prefix = prefix.finish();
        self.buf[at] = prefix[0];
        self.buf.splice(at + 1..at + 1, prefix[1..].iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_follow_the_wire_format() {
        let mut w = Writer::default();
        w.string(1, "hi");
        w.string(2, "");
        w.bool(3, true);
        w.bool(4, false);
        w.bool_always(5, false);
        w.int64(6, 300);
        w.int64(7, -1);
        w.double(8, 1.5);
        w.double(9, 0.0);
        let mut want = vec![0x0a, 2, b'h', b'i', 0x18, 1, 0x28, 0, 0x30, 0xac, 0x02, 0x38];
        want.extend([0xff; 9]);
        want.push(0x01);
        want.push(0x41);
        want.extend(1.5f64.to_le_bytes());
        assert_eq!(w.finish(), want);
    }

    #[test]
    fn long_messages_get_multi_byte_lengths() {
        let text = "x".repeat(200);
        let mut w = Writer::default();
        w.message(3, |w| {
            w.message(1, |w| w.string(2, &text));
            w.message(4, |_| {});
        });
        let bytes = w.finish();
        // Outer: tag, length 208 (0xd0 0x01); inner: tag, length 203 (0xcb 0x01); string: tag, 200 (0xc8 0x01).
        assert_eq!(&bytes[..9], &[0x1a, 0xd0, 0x01, 0x0a, 0xcb, 0x01, 0x12, 0xc8, 0x01]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0x22, 0x00]);
        assert_eq!(bytes.len(), 3 + 208);
    }
}
