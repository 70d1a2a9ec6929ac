//! The byte stream a pickle machine reads: buffered, position-tracked, and bounded by the
//! input's length so no declared length is trusted before it is checked.

use std::io::{self, BufRead, BufReader, Read, SeekFrom};

use crate::Source;
use crate::reader::{MAX_NAME_BYTES, invalid};

/// Why reading stopped early.
#[derive(Debug)]
pub enum Short {
    /// The data ended inside an opcode or operand.
    Truncated(String),
    /// An I/O error from the source.
    Io(io::Error),
}

/// A read that may stop short.
pub type Res<T> = Result<T, Short>;

/// A buffered reader over a source with its current position and total length.
pub struct Stream<'a> {
    inner: BufReader<&'a mut dyn Source>,
    pos: u64,
    len: u64,
}

impl<'a> Stream<'a> {
    /// Reads `source` (of `len` bytes) from `start`.
    pub fn new(source: &'a mut dyn Source, len: u64, start: u64) -> io::Result<Self> {
        source.seek(SeekFrom::Start(start))?;
        Ok(Self {
            inner: BufReader::with_capacity(64 << 10, source),
            pos: start,
            len,
        })
    }

    /// Current offset from the start of the source.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Total length.
    #[allow(clippy::len_without_is_empty, reason = "a stream, not a collection")]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The next byte, or `None` at the end.
    pub fn byte(&mut self) -> Res<Option<u8>> {
        let buf = self.inner.fill_buf().map_err(Short::Io)?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.inner.consume(1);
        self.pos += 1;
        Ok(Some(b))
    }

    /// Exactly `n` bytes (checked against what is left before allocating).
    pub fn take(&mut self, n: u64, what: &str) -> Res<Vec<u8>> {
        if n > self.remaining() {
            return Err(Short::Truncated(format!(
                "{what} declares {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let size = usize::try_from(n).map_err(|_| Short::Io(invalid("length too large")))?;
        let mut out = vec![0u8; size];
        self.inner
            .read_exact(&mut out)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => Short::Truncated(format!("{what} is cut short")),
                _ => Short::Io(e),
            })?;
        self.pos += n;
        Ok(out)
    }

    /// A little-endian unsigned integer of `n` (1..=8) bytes.
    pub fn uint(&mut self, n: u64, what: &str) -> Res<u64> {
        let bytes = self.take(n, what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Skips `n` bytes (checked against what is left).
    pub fn skip(&mut self, n: u64, what: &str) -> Res<()> {
        if n > self.remaining() {
            return Err(Short::Truncated(format!(
                "{what} declares {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let d = i64::try_from(n).map_err(|_| Short::Io(invalid("skip too large")))?;
        self.inner.seek_relative(d).map_err(Short::Io)?;
        self.pos += n;
        Ok(())
    }

    /// A line up to (not including) `\n`, at most [`MAX_NAME_BYTES`] long.
    pub fn line(&mut self, what: &str) -> Res<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let buf = self.inner.fill_buf().map_err(Short::Io)?;
            if buf.is_empty() {
                return Err(Short::Truncated(format!("{what} has no end of line")));
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                out.extend_from_slice(buf.get(..i).unwrap_or_default());
                self.inner.consume(i + 1);
                self.pos += i as u64 + 1;
                return Ok(out);
            }
            let n = buf.len();
            out.extend_from_slice(buf);
            self.inner.consume(n);
            self.pos += n as u64;
            if out.len() > MAX_NAME_BYTES {
                return Err(Short::Truncated(format!(
                    "{what} is longer than {MAX_NAME_BYTES} bytes without an end of line"
                )));
            }
        }
    }
}
