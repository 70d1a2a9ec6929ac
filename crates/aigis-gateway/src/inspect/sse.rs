//! An incremental server-sent-events reader: bytes in, complete events out.
//!
//! Robust to events split anywhere across reads (including inside a CRLF or a UTF-8
//! sequence), multi-line `data:`, comments and keep-alives, and CR, LF or CRLF line ends.
//! Bounded: an event longer than [`MAX_EVENT`] is an error, as is invalid UTF-8 in a field,
//! and a stream that ends inside an event.

use bytes::{Bytes, BytesMut};

/// Longest event accepted from an upstream.
pub const MAX_EVENT: usize = 1 << 20;

/// One complete event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The bytes as received, blank line included.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` lines joined with `\n`; empty for a comment or keep-alive.
    pub data: String,
}

/// What is wrong with the upstream's stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event grew past [`MAX_EVENT`].
    #[error("an event from the upstream exceeds {MAX_EVENT} bytes")]
    Oversized,
    /// A field is not UTF-8.
    #[error("an event from the upstream is not valid UTF-8 (byte {0} of the event)")]
    Utf8(usize),
    /// The stream ended inside an event.
    #[error("the upstream closed the stream in the middle of an event")]
    Truncated,
}

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub struct Reader {
    pending: BytesMut,
    /// Where the search for the event end resumes (everything before has no blank line).
    scanned: usize,
    /// The byte before `scanned` ended a line.
    eol: bool,
}

impl Reader {
    /// Adds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.event_end() {
            let raw = self.pending.split_to(end).freeze();
            self.scanned = 0;
            self.eol = false;
            out.push(parse(raw)?);
        }
        if self.pending.len() > MAX_EVENT {
            return Err(SseError::Oversized);
        }
        Ok(out)
    }

    /// The upstream ended: what is left must be nothing but blank lines, or one last event
    /// whose final blank line is missing (accepted when it parses, as many servers do after
    /// `[DONE]`).
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        let rest = self.pending.split().freeze();
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let event = parse(rest)?;
        if event.data == "[DONE]" {
            Ok(Some(event))
        } else {
            Err(SseError::Truncated)
        }
    }

    /// End (exclusive) of the first complete event: after two line ends in a row.
    fn event_end(&mut self) -> Option<usize> {
        let buf = &self.pending[..];
        let mut i = self.scanned;
        // `prev_eol` = the previous byte ended a line (so a line end now closes the event).
        let mut prev_eol = self.eol;
        while i < buf.len() {
            match buf[i] {
                b'\r' => {
                    // CRLF counts once; a CR at the very end must wait for the next byte.
                    let Some(&next) = buf.get(i + 1) else {
                        self.scanned = i;
                        self.eol = prev_eol;
                        return None;
                    };
                    let len = if next == b'\n' { 2 } else { 1 };
                    if prev_eol {
                        return Some(i + len);
                    }
                    prev_eol = true;
                    i += len;
                }
                b'\n' => {
                    if prev_eol {
                        return Some(i + 1);
                    }
                    prev_eol = true;
                    i += 1;
                }
                _ => {
                    prev_eol = false;
                    i += 1;
                }
            }
        }
        self.scanned = buf.len();
        self.eol = prev_eol;
        None
    }
}

/// Parses one raw event's fields.
fn parse(raw: Bytes) -> Result<Event, SseError> {
    let text = std::str::from_utf8(&raw).map_err(|e| SseError::Utf8(e.valid_up_to()))?;
    let mut name = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Ok(Event {
        raw,
        name,
        data: data.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Result<Vec<Event>, SseError> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c)?);
        }
        out.extend(r.finish()?);
        Ok(out)
    }

    #[test]
    fn splits_anywhere_and_joins_multiline_data() {
        let stream: &[u8] = b": keep-alive\n\nevent: delta\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: x\rdata: y\r\rdata: [DONE]";
        let whole = all(&[stream]).unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].data, "");
        assert_eq!(whole[1].name.as_deref(), Some("delta"));
        assert_eq!(whole[1].data, "{\"a\":\n1}");
        assert_eq!(whole[2].data, "x\ny");
        assert_eq!(whole[3].data, "[DONE]");
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            let parts = all(&[a, b]).unwrap();
            let datas: Vec<_> = parts.iter().map(|e| e.data.clone()).collect();
            let want: Vec<_> = whole.iter().map(|e| e.data.clone()).collect();
            assert_eq!(datas, want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&bytes).unwrap().len(), 4);
    }

    #[test]
    fn bad_streams_are_errors() {
        assert_eq!(all(&[b"data: \xff\xfe\n\n"]), Err(SseError::Utf8(6)));
        assert_eq!(all(&[b"data: {\"partial\""]), Err(SseError::Truncated));
        let mut r = Reader::default();
        let big = vec![b'a'; MAX_EVENT + 1];
        assert_eq!(r.push(&big), Err(SseError::Oversized));
    }
}
