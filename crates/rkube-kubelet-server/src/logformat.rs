//! The CRI container log format (`<RFC3339Nano> <stdout|stderr> <F|P> <content>`, one entry a line, as
//! containerd writes it) and the assembly of partial (`P`) entries into whole lines.

use jiff::Timestamp;

/// Which output stream an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One parsed line of a CRI log file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// The timestamp exactly as written (kept to echo it back with `timestamps=true`).
    pub(crate) time_text: &'a str,
    pub(crate) time: Timestamp,
    pub(crate) stream: Stream,
    /// `P`: the runtime split a long line; the rest follows in later entries.
    pub(crate) partial: bool,
    /// The content, without the line's trailing newline.
    pub(crate) content: &'a [u8],
}

/// Why a log line could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ParseError {
    #[error("log line has {0} fields, want at least 3")]
    Fields(usize),
    #[error("log line timestamp {0:?} is not RFC 3339")]
    Time(String),
    #[error("log line stream {0:?} is neither stdout nor stderr")]
    Stream(String),
    #[error("log line tag {0:?} is neither F nor P")]
    Tag(String),
}

/// Parses one line (without its newline).
pub(crate) fn parse(line: &[u8]) -> Result<Entry<'_>, ParseError> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let (Some(time), Some(stream), Some(tag)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(ParseError::Fields(line.split(|b| *b == b' ').count()));
    };
    let content = fields.next().unwrap_or_default();
    let time_text = std::str::from_utf8(time).map_err(|_| ParseError::Time(String::from_utf8_lossy(time).into()))?;
    let time: Timestamp = time_text.parse().map_err(|_| ParseError::Time(time_text.to_owned()))?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => return Err(ParseError::Stream(String::from_utf8_lossy(other).into())),
    };
    // Tags may carry more flags after `:` in future runtimes; the first one says partial or full.
    let partial = match tag.split(|b| *b == b':').next().unwrap_or_default() {
        b"F" => false,
        b"P" => true,
        _ => return Err(ParseError::Tag(String::from_utf8_lossy(tag).into())),
    };
    Ok(Entry { time_text, time, stream, partial, content })
}

/// A whole output line: partial entries joined, stamped with the first fragment's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) time_text: String,
    pub(crate) time: Timestamp,
    pub(crate) stream: Stream,
    /// The content including its newline.
    pub(crate) content: Vec<u8>,
}

impl Line {
    /// The bytes a client gets, with the timestamp in front when asked for.
    pub(crate) fn render(&self, timestamps: bool) -> Vec<u8> {
        if !timestamps {
            return self.content.clone();
        }
        let mut out = Vec::with_capacity(self.time_text.len() + 1 + self.content.len());
        out.extend_from_slice(self.time_text.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.content);
        out
    }
}

/// Joins partial entries per stream (stdout and stderr fragments may interleave).
#[derive(Default)]
pub(crate) struct Assembler {
    pending: [Option<Line>; 2],
}

impl Assembler {
    /// Feeds one entry; returns a line once it is complete.
    pub(crate) fn push(&mut self, e: &Entry<'_>) -> Option<Line> {
        let slot = &mut self.pending[e.stream as usize];
        let line = slot.get_or_insert_with(|| Line {
            time_text: e.time_text.to_owned(),
            time: e.time,
            stream: e.stream,
            content: Vec::new(),
        });
        line.content.extend_from_slice(e.content);
        if e.partial {
            return None;
        }
        line.content.push(b'\n');
        slot.take()
    }

    /// Whatever is still pending (the container ended in the middle of a line), oldest first.
    pub(crate) fn flush(&mut self) -> Vec<Line> {
        let mut out: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
        out.sort_by_key(|l| l.time);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_entries() {
        let e = parse(b"2016-10-06T00:17:09.669794202Z stdout F hello world").expect("full");
        assert_eq!(e.time_text, "2016-10-06T00:17:09.669794202Z");
        assert_eq!(e.stream, Stream::Stdout);
        assert!(!e.partial);
        assert_eq!(e.content, b"hello world");
        let e = parse(b"2016-10-06T00:17:09.669794203+02:00 stderr P part").expect("partial");
        assert_eq!(e.stream, Stream::Stderr);
        assert!(e.partial);
        assert_eq!(e.time, "2016-10-05T22:17:09.669794203Z".parse::<Timestamp>().expect("ts"));
        // An empty line has no content field at all.
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdout F").expect("empty").content, b"");
        // Spaces inside the content are content.
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdout F  a  b ").expect("spaces").content, b" a  b ");
    }

    #[test]
    fn rejects_malformed_lines() {
        assert_eq!(parse(b"garbage"), Err(ParseError::Fields(1)));
        assert_eq!(parse(b"yesterday stdout F x"), Err(ParseError::Time("yesterday".into())));
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdin F x"), Err(ParseError::Stream("stdin".into())));
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdout X x"), Err(ParseError::Tag("X".into())));
    }

    #[test]
    fn joins_partials_per_stream() {
        let mut a = Assembler::default();
        let lines = [
            &b"2020-01-01T00:00:01Z stdout P abc"[..],
            b"2020-01-01T00:00:02Z stderr F err",
            b"2020-01-01T00:00:03Z stdout P def",
            b"2020-01-01T00:00:04Z stdout F ghi",
        ];
        let out: Vec<Line> = lines.iter().filter_map(|l| a.push(&parse(l).expect("parse"))).collect();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].content, b"err\n");
        assert_eq!(out[1].content, b"abcdefghi\n");
        assert_eq!(out[1].time_text, "2020-01-01T00:00:01Z");
        assert_eq!(out[1].render(true), b"2020-01-01T00:00:01Z abcdefghi\n");
        assert!(a.flush().is_empty());
        a.push(&parse(b"2020-01-01T00:00:05Z stdout P tail").expect("parse"));
        assert_eq!(a.flush()[0].content, b"tail");
    }
}
