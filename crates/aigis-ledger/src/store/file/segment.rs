//! Reading segments: batch by batch, telling a clean end from a torn or damaged tail.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::format::{
    BATCH_HEADER, BatchFormat, CRC_LEN, ENTRY_HEADER, MAX_PAYLOAD, SEGMENT_HEADER, SEGMENT_MAGIC,
    be_u32, be_u64,
};
use super::io_err;
use crate::LedgerError;
use crate::merkle::Hash;

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One stored entry as the segment holds it (tests rewrite segments through this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Stored index.
    pub idx: u64,
    /// Stored leaf hash.
    pub leaf: Hash,
    /// Stored event bytes.
    pub event: Vec<u8>,
}

/// What a batch read from a segment holds.
pub(super) struct Batch {
    /// Offset of the batch in its segment.
    pub(super) offset: u64,
    pub(super) mark: Option<(String, u64)>,
    pub(super) entries: Vec<RawEntry>,
    /// Whether the check matches (computed only when asked).
    pub(super) intact: bool,
}

/// How reading a batch ended.
pub(super) enum Next {
    Batch(Batch),
    /// Clean end of the segment.
    End,
    /// Bytes at `offset` that do not form a whole batch. `torn`: they are a prefix of a
    /// batch running to the end of the file (a torn write, or one in progress); otherwise the
    /// segment is damaged.
    Partial {
        offset: u64,
        why: &'static str,
        torn: bool,
    },
}

/// Reads batches of one segment in order.
pub(super) struct SegmentReader {
    pub(super) path: PathBuf,
    pub(super) file: BufReader<File>,
    /// File length when opened (a concurrent writer may append later; ignored).
    pub(super) len: u64,
    pub(super) pos: u64,
    pub(super) first: u64,
    pub(super) buf: Vec<u8>,
}

impl SegmentReader {
    pub(super) fn open(path: &Path) -> Result<Self, LedgerError> {
        let io = |e: std::io::Error| io_err(path, &e);
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut file = BufReader::with_capacity(1 << 18, file);
        let mut head = [0u8; 16];
        let n = read_full(&mut file, &mut head).map_err(io)?;
        if n < head.len() || &head[..8] != SEGMENT_MAGIC {
            return Err(LedgerError::Io {
                path: path.display().to_string(),
                message: "not a ledger segment (bad header)".into(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            pos: SEGMENT_HEADER,
            first: be_u64(&head[8..]),
            buf: Vec::new(),
        })
    }

    /// Reads the next batch; with `check`, also verifies its check when it is the file's last.
    pub(super) fn next(&mut self, check_last: bool) -> Result<Next, LedgerError> {
        let offset = self.pos;
        if offset >= self.len {
            return Ok(Next::End);
        }
        if self.len - offset < (BATCH_HEADER + CRC_LEN) as u64 {
            return Ok(Next::Partial {
                offset,
                why: "a batch header is cut short",
                torn: true,
            });
        }
        let mut head = [0u8; BATCH_HEADER];
        self.file
            .read_exact(&mut head)
            .map_err(|e| io_err(&self.path, &e))?;
        let Some(format) = BatchFormat::of(&head[..4]) else {
            return Ok(Next::Partial {
                offset,
                why: "bytes that are not a batch",
                torn: false,
            });
        };
        let payload = be_u32(&head[4..]) as usize;
        let count = be_u32(&head[8..]) as usize;
        let mark_len = be_u32(&head[12..]) as usize;
        let total = (BATCH_HEADER + payload + format.check_len()) as u64;
        if payload > MAX_PAYLOAD || mark_len > payload {
            return Ok(Next::Partial {
                offset,
                why: "a batch header with impossible lengths",
                torn: false,
            });
        }
        if self.len - offset < total {
            return Ok(Next::Partial {
                offset,
                why: "a batch is cut short",
                torn: true,
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(&head);
        self.buf
            .resize(BATCH_HEADER + payload + format.check_len(), 0);
        self.file
            .read_exact(&mut self.buf[BATCH_HEADER..])
            .map_err(|e| io_err(&self.path, &e))?;
        self.pos += total;
        let body = BATCH_HEADER + payload;
        let intact = !(check_last && self.pos == self.len)
            || format.checks(&self.buf[..body], &self.buf[body..]);
        let parsed = parse_payload(&self.buf[BATCH_HEADER..body], count, mark_len);
        let (mark, entries) = match parsed {
            Some(p) => p,
            // Garbage at the end of the file whose check fails: a torn write.
            None if !intact => (None, Vec::new()),
            None => {
                return Ok(Next::Partial {
                    offset,
                    why: "a batch's entries do not fit its length",
                    torn: false,
                });
            }
        };
        Ok(Next::Batch(Batch {
            offset,
            mark,
            entries,
            intact,
        }))
    }
}

pub(super) type Parsed = (Option<(String, u64)>, Vec<RawEntry>);

/// Splits a batch payload into its mark and entries; `None` when the lengths do not add up.
pub(super) fn parse_payload(payload: &[u8], count: usize, mark_len: usize) -> Option<Parsed> {
    let mark = if mark_len == 0 {
        None
    } else {
        let text = std::str::from_utf8(&payload[..mark_len]).ok()?;
        let (id, through) = text.split_once('\n')?;
        Some((id.to_owned(), through.parse().ok()?))
    };
    let mut rest = &payload[mark_len..];
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        if rest.len() < ENTRY_HEADER {
            return None;
        }
        let idx = be_u64(rest);
        let len = be_u32(&rest[8..]) as usize;
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&rest[12..ENTRY_HEADER]);
        let end = ENTRY_HEADER.checked_add(len)?;
        if rest.len() < end {
            return None;
        }
        entries.push(RawEntry {
            idx,
            leaf,
            event: rest[ENTRY_HEADER..end].to_vec(),
        });
        rest = &rest[end..];
    }
    rest.is_empty().then_some((mark, entries))
}

/// The segments of `dir` as (first index, path), by first index.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LedgerError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, &e))? {
        let entry = entry.map_err(|e| io_err(dir, &e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((first, entry.path()));
    }
    out.sort_unstable_by_key(|(first, _)| *first);
    Ok(out)
}
