//! The file set's bytes on disk: magics, batch and checkpoint encodings, and their checks
//! (the layout is described in the parent module).

use aws_lc_rs::digest::{SHA256, digest};

use crate::event::Encoded;
use crate::merkle::{Hash, leaf_hash};
use crate::store::{SpoolMark, StoredCheckpoint};

pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"AIGLOG1\n";
pub(super) const SEGMENT_HEADER: u64 = 16;
pub(super) const CHECKPOINT_MAGIC: &[u8; 8] = b"AIGCKP1\n";
/// Batches of format 1: a truncated SHA-256 check.
pub(super) const BATCH_MAGIC_V1: &[u8; 4] = b"AIGB";
/// Batches of format 2 (written now): a CRC-32 check.
pub(super) const BATCH_MAGIC: &[u8; 4] = b"AIGC";
pub(super) const BATCH_HEADER: usize = 16;
/// The check of a checkpoint record and of a format 1 batch.
pub(super) const CHECK_LEN: usize = 16;
/// The check of a format 2 batch.
pub(super) const CRC_LEN: usize = 4;
/// Entry header: index, event length, leaf hash.
pub(super) const ENTRY_HEADER: usize = 8 + 4 + 32;
/// Largest batch payload accepted when reading (bounded memory on a damaged file).
pub(super) const MAX_PAYLOAD: usize = 1 << 30;
/// Largest checkpoint note accepted when reading.
pub(super) const MAX_NOTE: usize = 1 << 20;
/// Bytes of a checkpoint record around its note.
pub(super) const CHECKPOINT_OVERHEAD: usize = 4 + 8 + 8 + CHECK_LEN;

pub(super) fn check_of(bytes: &[u8]) -> [u8; CHECK_LEN] {
    let d = digest(&SHA256, bytes);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&d.as_ref()[..CHECK_LEN]);
    out
}

/// A batch format: its magic, and the length and computation of its check.
#[derive(Clone, Copy)]
pub(super) enum BatchFormat {
    V1,
    V2,
}

impl BatchFormat {
    pub(super) fn of(magic: &[u8]) -> Option<Self> {
        match magic {
            m if m == BATCH_MAGIC => Some(Self::V2),
            m if m == BATCH_MAGIC_V1 => Some(Self::V1),
            _ => None,
        }
    }

    pub(super) fn check_len(self) -> usize {
        match self {
            Self::V1 => CHECK_LEN,
            Self::V2 => CRC_LEN,
        }
    }

    /// Whether `check` is the check of `body`.
    pub(super) fn checks(self, body: &[u8], check: &[u8]) -> bool {
        match self {
            Self::V1 => check_of(body)[..] == *check,
            Self::V2 => crc32fast::hash(body).to_be_bytes()[..] == *check,
        }
    }
}

pub(super) fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

pub(super) fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

pub(super) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.log")
}

/// Starts a batch in `buf`: a header to be completed by [`finish_batch`], then the mark.
pub(super) fn encode_batch_header(buf: &mut Vec<u8>, mark: Option<&SpoolMark<'_>>) -> u32 {
    buf.extend_from_slice(BATCH_MAGIC);
    buf.extend_from_slice(&[0u8; BATCH_HEADER - 4]);
    let Some(m) = mark else {
        return 0;
    };
    let before = buf.len();
    buf.extend_from_slice(m.spool.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(m.through.to_string().as_bytes());
    len_u32(buf.len() - before)
}

#[cfg(any(test, feature = "test-util"))]
pub(super) fn push_entry(buf: &mut Vec<u8>, idx: u64, leaf: &Hash, event: &[u8]) {
    buf.extend_from_slice(&idx.to_be_bytes());
    buf.extend_from_slice(&len_u32(event.len()).to_be_bytes());
    buf.extend_from_slice(leaf);
    buf.extend_from_slice(event);
}

/// Fills in the header of the batch that is all of `buf`, and appends its check.
pub(super) fn finish_batch(buf: &mut Vec<u8>, mark_len: u32, count: u32) {
    let payload = len_u32(buf.len() - BATCH_HEADER);
    buf[4..8].copy_from_slice(&payload.to_be_bytes());
    buf[8..12].copy_from_slice(&count.to_be_bytes());
    buf[12..16].copy_from_slice(&mark_len.to_be_bytes());
    let check = crc32fast::hash(buf);
    buf.extend_from_slice(&check.to_be_bytes());
}

pub(super) fn encode_checkpoint(cp: &StoredCheckpoint) -> Vec<u8> {
    let mut rec = Vec::with_capacity(cp.note.len() + CHECKPOINT_OVERHEAD);
    rec.extend_from_slice(&len_u32(cp.note.len()).to_be_bytes());
    rec.extend_from_slice(&cp.size.to_be_bytes());
    rec.extend_from_slice(&cp.time_ms.to_be_bytes());
    rec.extend_from_slice(cp.note.as_bytes());
    let check = check_of(&rec);
    rec.extend_from_slice(&check);
    rec
}

/// Encodes `events` (setting their indices from `first`) as one batch into `buf`; returns
/// their leaves.
pub(super) fn encode_batch(
    buf: &mut Vec<u8>,
    events: &mut [Encoded],
    first: u64,
    mark: Option<&SpoolMark<'_>>,
) -> Vec<Hash> {
    buf.clear();
    let mark_len = encode_batch_header(buf, mark);
    let mut leaves = Vec::with_capacity(events.len());
    for (i, ev) in events.iter_mut().enumerate() {
        ev.index = first + i as u64;
        let at = buf.len();
        buf.extend_from_slice(&ev.index.to_be_bytes());
        buf.extend_from_slice(&[0u8; 4 + 32]);
        ev.canonical_into(buf);
        let leaf = leaf_hash(&buf[at + ENTRY_HEADER..]);
        let len = len_u32(buf.len() - at - ENTRY_HEADER);
        buf[at + 8..at + 12].copy_from_slice(&len.to_be_bytes());
        buf[at + 12..at + ENTRY_HEADER].copy_from_slice(&leaf);
        leaves.push(leaf);
    }
    finish_batch(buf, mark_len, len_u32(events.len()));
    leaves
}
