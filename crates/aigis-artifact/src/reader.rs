//! Bounded, checked reads: the one place where parsers turn untrusted lengths and offsets into
//! reads. Every limit the scanner enforces is a named `MAX_*` constant here, so the limits are
//! reviewed in one place and every parser fails closed the same way.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Source;

/// Deepest nesting of containers (zip in tar in gzip…) and of pickles inside pickles.
pub const MAX_DEPTH: u32 = 8;
/// Bytes of decompressed data one scan may produce across all archive members and wrappers:
/// the zip-bomb bound (a scan that would need more reports "not scanned").
pub const MAX_TOTAL_DECOMPRESSED: u64 = 8 << 30;
/// Largest compressed member or wrapper payload that is decompressed into memory to be scanned.
pub const MAX_MEMBER_IN_MEMORY: u64 = 256 << 20;
/// Most entries read from one zip central directory or one tar archive.
pub const MAX_ARCHIVE_ENTRIES: usize = 200_000;
/// Longest zip member name, tar name or pickle string kept as text.
pub const MAX_NAME_BYTES: usize = 64 << 10;
/// Bytes read from the start of every input to recognise its format.
pub const SNIFF_BYTES: usize = 1024;
/// Most pickle opcodes executed for one input (all concatenated pickles together).
pub const MAX_PICKLE_OPS: u64 = 50_000_000;
/// Most memo entries one pickle stream may define.
pub const MAX_MEMO_ENTRIES: usize = 1_000_000;
/// Deepest pickle stack (values plus marks).
pub const MAX_PICKLE_STACK: usize = 1_000_000;
/// Largest bytes/str operand kept in memory for analysis (nested pickles, resolved names).
/// Longer operands are skipped over (and still bounded by the input's length).
pub const MAX_KEPT_OPERAND: u64 = 64 << 20;
/// Most concatenated pickles read from one stream.
pub const MAX_PICKLES_PER_STREAM: usize = 4096;
/// Largest TorchScript source file (`code/…py`) read for analysis.
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;

/// A shared budget of decompressed bytes for one top-level input.
#[derive(Debug, Clone)]
pub struct Budget(Arc<AtomicU64>);

impl Budget {
    /// A budget of [`MAX_TOTAL_DECOMPRESSED`] bytes.
    pub fn new() -> Self {
        Self::of(MAX_TOTAL_DECOMPRESSED)
    }

    /// A budget of `n` bytes.
    pub fn of(n: u64) -> Self {
        Self(Arc::new(AtomicU64::new(n)))
    }

    /// Takes `n` bytes from the budget; false (and nothing taken) when not enough is left.
    pub fn take(&self, n: u64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads exactly `len` bytes at `offset`, refusing (without allocating) when the range is not
/// inside a source of `source_len` bytes or `len` is above `max`.
pub fn read_at(
    source: &mut dyn Source,
    source_len: u64,
    offset: u64,
    len: u64,
    max: u64,
) -> io::Result<Vec<u8>> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| invalid(format!("range {offset}+{len} overflows")))?;
    if end > source_len {
        return Err(invalid(format!(
            "range {offset}..{end} is past the end ({source_len} bytes)"
        )));
    }
    if len > max {
        return Err(invalid(format!(
            "{len} bytes is above the {max}-byte limit"
        )));
    }
    let n = usize::try_from(len).map_err(|_| invalid("length does not fit in memory"))?;
    let mut buf = vec![0; n];
    source.seek(SeekFrom::Start(offset))?;
    source.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads up to `max` bytes from the start of the source (fewer if it is shorter).
pub fn read_prefix(source: &mut dyn Source, max: usize) -> io::Result<Vec<u8>> {
    source.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::with_capacity(max);
    source.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads everything from `reader` into memory, failing with a limit error past `max` bytes and
/// charging what was read to `budget`.
pub fn read_bounded(reader: &mut dyn Read, max: u64, budget: &Budget) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(out);
        }
        let n64 = n as u64;
        if out.len() as u64 + n64 > max {
            return Err(limit(format!("decompresses to more than {max} bytes")));
        }
        if !budget.take(n64) {
            return Err(limit(format!(
                "the scan's total of {MAX_TOTAL_DECOMPRESSED} decompressed bytes is exhausted \
                 (zip bomb?)"
            )));
        }
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// An I/O error meaning "the input is malformed".
pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// An I/O error meaning "a `MAX_*` limit was hit" (reported as not scanned).
pub fn limit(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::QuotaExceeded, msg.into())
}

/// A window `start..start+len` of another source, seen as a source of its own (an archive
/// member stored without compression): no copy, reads never leave the window.
pub struct Window<'a> {
    inner: &'a mut dyn Source,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    /// The window; `start + len` must be inside `inner` (checked by the caller against its
    /// length, and reads past the real end fail as truncated).
    pub fn new(inner: &'a mut dyn Source, start: u64, len: u64) -> Self {
        Self {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| invalid("seek before the start of a member"))?;
        self.pos = target;
        Ok(target)
    }
}
