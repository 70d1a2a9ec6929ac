//! ASCII armor: strict RFC 7468 PEM with the label `AGE ENCRYPTED FILE`, 64-column lines,
//! padded canonical base64. Whitespace is accepted only before and after the block; LF or CRLF
//! line ends. Both directions stream line by line (constant memory).

use std::io::{self, BufRead, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Error;

const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const END: &[u8] = b"-----END AGE ENCRYPTED FILE-----";
const COLUMNS: usize = 64;
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
/// Longest line read while looking for the next one (END marker plus CRLF, with room).
pub const MAX_ARMOR_LINE: usize = 80;

/// True when `start` (the first bytes of an input) is not the binary format, which always
/// begins with `age-encryption.org/`; anything else is parsed (strictly) as armor.
pub fn looks_armored(start: &[u8]) -> bool {
    const BINARY: &[u8] = b"age-encryption.org/";
    let n = start.len().min(BINARY.len());
    !start.is_empty() && start[..n] != BINARY[..n]
}

/// Wraps a writer, armoring what is written; call [`ArmorWriter::finish`] at the end.
pub struct ArmorWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> ArmorWriter<W> {
    /// Writes the BEGIN line.
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(BEGIN)?;
        inner.write_all(b"\n")?;
        Ok(Self {
            inner,
            pending: Vec::with_capacity(BYTES_PER_LINE * 2),
        })
    }

    /// Writes the last line and the END line; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            let line = STANDARD.encode(&self.pending);
            self.inner.write_all(line.as_bytes())?;
            self.inner.write_all(b"\n")?;
        }
        self.inner.write_all(END)?;
        self.inner.write_all(b"\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ArmorWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        let mut out = String::new();
        while !rest.is_empty() {
            let take = (BYTES_PER_LINE - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            // Hold back a full line until more arrives: the last line is written by `finish`.
            if self.pending.len() == BYTES_PER_LINE && !rest.is_empty() {
                STANDARD.encode_string(&self.pending, &mut out);
                out.push('\n');
                self.pending.clear();
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(PartialEq, Eq)]
enum State {
    Start,
    Body,
    /// A short or padded line was read: the next line must be END.
    LastSeen,
    Done,
}

/// Decodes an armored stream; armor errors surface as `io::Error`s wrapping [`Error::Armor`].
pub struct ArmorReader<R: BufRead> {
    inner: R,
    state: State,
    line_no: u64,
    decoded: Vec<u8>,
    pos: usize,
}

fn armor_err(line: u64, reason: &str) -> io::Error {
    io::Error::other(Error::Armor {
        line,
        reason: reason.to_owned(),
    })
}

impl<R: BufRead> ArmorReader<R> {
    /// Wraps `inner`, which must be positioned at the start of the armored text.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::Start,
            line_no: 0,
            decoded: Vec::new(),
            pos: 0,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let limit = MAX_ARMOR_LINE as u64 + 1;
        self.inner
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(None);
        }
        self.line_no += 1;
        if line.len() as u64 >= limit {
            return Err(armor_err(self.line_no, "line too long"));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    fn skip_leading_whitespace(&mut self) -> io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let newlines = buf[..ws]
                .iter()
                .filter(|b| **b == b'\n')
                .map(|_| 1u64)
                .sum::<u64>();
            let all = ws == buf.len();
            self.inner.consume(ws);
            self.line_no += newlines;
            if !all {
                return Ok(());
            }
        }
    }

    /// Everything after END must be whitespace.
    fn check_trailer(&mut self) -> io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                return Err(armor_err(self.line_no, "data after the END line"));
            }
            let n = buf.len();
            self.inner.consume(n);
        }
    }

    fn advance(&mut self) -> io::Result<()> {
        if self.state == State::Start {
            self.skip_leading_whitespace()?;
            let line = self.next_line()?;
            if line.as_deref() != Some(BEGIN) {
                return Err(armor_err(
                    self.line_no,
                    "expected '-----BEGIN AGE ENCRYPTED FILE-----'",
                ));
            }
            self.state = State::Body;
        }
        let Some(line) = self.next_line()? else {
            return Err(armor_err(self.line_no, "missing the END line"));
        };
        if line == END {
            self.state = State::Done;
            return self.check_trailer();
        }
        if self.state == State::LastSeen {
            return Err(armor_err(
                self.line_no,
                "a short or padded line must be the last one",
            ));
        }
        if line.is_empty() || line.len() > COLUMNS || line.len() % 4 != 0 {
            return Err(armor_err(
                self.line_no,
                "base64 lines must be 64 columns (the last may be shorter, padded)",
            ));
        }
        if line.len() < COLUMNS || line.contains(&b'=') {
            self.state = State::LastSeen;
        }
        // STANDARD requires canonical padding and rejects non-zero trailing bits.
        self.decoded = STANDARD
            .decode(&line)
            .map_err(|_| armor_err(self.line_no, "invalid or non-canonical base64"))?;
        self.pos = 0;
        Ok(())
    }
}

impl<R: BufRead> Read for ArmorReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.decoded.len() {
            if self.state == State::Done {
                return Ok(0);
            }
            self.advance()?;
        }
        let n = (self.decoded.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
