//! The STREAM payload: 64 KiB ChaCha20-Poly1305 chunks, nonce = 11-byte big-endian counter ||
//! last-chunk flag. Chunks are sealed and opened in parallel batches of [`BATCH_CHUNKS`], so
//! memory stays at one batch whatever the file size, and plaintext is released in order and only
//! after its chunk authenticated.

use std::io::{self, Read, Write};

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use rayon::prelude::*;

use super::primitives::{FileKey, hkdf32};
use super::{Error, PayloadFailure};

/// Plaintext bytes per chunk.
pub const CHUNK_LEN: usize = 64 * 1024;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Ciphertext bytes per full chunk.
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Chunks processed per parallel batch (4 MiB of plaintext in flight).
pub const BATCH_CHUNKS: usize = 64;

/// The ChaCha20-Poly1305 key of one file's payload.
pub(crate) struct PayloadKey(LessSafeKey);

impl PayloadKey {
    pub(crate) fn derive(file_key: &FileKey, nonce: &[u8; 16]) -> Result<Self, Error> {
        let key = hkdf32(file_key.expose(), nonce, b"payload")?;
        UnboundKey::new(&CHACHA20_POLY1305, key.as_ref())
            .map(|k| Self(LessSafeKey::new(k)))
            .map_err(|_| Error::Random)
    }

    fn seal(&self, counter: u64, last: bool, slot: &mut [u8], len: usize) -> Result<(), Error> {
        let (plain, rest) = slot.split_at_mut(len);
        let tag = self
            .0
            .seal_in_place_separate_tag(chunk_nonce(counter, last), Aad::empty(), plain)
            .map_err(|_| Error::Random)?;
        rest[..TAG_LEN].copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `sealed` into `out` (the input is left intact); returns the plaintext length.
    fn open_into(&self, counter: u64, last: bool, sealed: &[u8], out: &mut [u8]) -> Option<usize> {
        let (ct, tag) = sealed.split_at(sealed.len().checked_sub(TAG_LEN)?);
        let out = out.get_mut(..ct.len())?;
        self.0
            .open_separate_gather(chunk_nonce(counter, last), Aad::empty(), ct, tag, out)
            .ok()
            .map(|()| ct.len())
    }

    /// Opens `sealed` in place; returns the plaintext length.
    pub(crate) fn open(&self, counter: u64, last: bool, sealed: &mut [u8]) -> Option<usize> {
        self.0
            .open_in_place(chunk_nonce(counter, last), Aad::empty(), sealed)
            .ok()
            .map(|p| p.len())
    }
}

fn chunk_nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// A reader that knows, after each fill, whether the input ended exactly there (one byte of
/// look-ahead), which is how STREAM decides which chunk is the last.
pub(crate) struct Lookahead<R> {
    inner: R,
    pending: Option<u8>,
}

impl<R: Read> Lookahead<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// Fills `buf` as far as the input allows; returns (bytes, input-ended-here).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let mut n = 0;
        if let Some(b) = self.pending.take() {
            if let Some(first) = buf.first_mut() {
                *first = b;
                n = 1;
            } else {
                self.pending = Some(b);
                return Ok((0, false));
            }
        }
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => return Ok((n, true)),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(0) => return Ok((n, true)),
                Ok(_) => {
                    self.pending = Some(one[0]);
                    return Ok((n, false));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Encrypts all of `input` to `output`; returns the plaintext length.
pub(crate) fn seal(
    key: &PayloadKey,
    input: impl Read,
    output: &mut impl Write,
) -> Result<u64, Error> {
    let mut input = Lookahead::new(input);
    // Wiped when dropped: a chunk that failed to seal is still plaintext.
    let mut batch = zeroize::Zeroizing::new(vec![0u8; BATCH_CHUNKS * SEALED_CHUNK_LEN]);
    let mut lens = Vec::with_capacity(BATCH_CHUNKS);
    let (mut counter, mut total) = (0u64, 0u64);
    loop {
        lens.clear();
        let mut ended = false;
        for slot in batch.chunks_mut(SEALED_CHUNK_LEN) {
            let (n, eof) = input.fill(&mut slot[..CHUNK_LEN]).map_err(Error::from_io)?;
            lens.push(n);
            if eof {
                ended = true;
                break;
            }
        }
        let base = counter;
        let count = lens.len();
        batch
            .par_chunks_mut(SEALED_CHUNK_LEN)
            .zip(lens.par_iter())
            .enumerate()
            .try_for_each(|(i, (slot, len))| {
                key.seal(base + i as u64, ended && i + 1 == count, slot, *len)
            })?;
        for (slot, len) in batch.chunks(SEALED_CHUNK_LEN).zip(&lens) {
            output
                .write_all(&slot[..len + TAG_LEN])
                .map_err(Error::from_io)?;
            total += *len as u64;
        }
        counter += count as u64;
        if ended {
            return Ok(total);
        }
    }
}

/// The outcome of opening one chunk of a batch.
enum Opened {
    /// Authenticated; this much plaintext.
    Plain(usize),
    /// Authenticated (so it may be released), but in the wrong place: the stream is broken.
    PlainThen(usize, PayloadFailure),
    Failed(PayloadFailure),
}

/// Decrypts the payload from `input` to `output`. `payload_offset` (where the payload starts in
/// the file) only makes error messages point at the right byte. Every chunk that authenticated
/// before a failure has been written when the error is returned.
pub(crate) fn open(
    key: &PayloadKey,
    input: impl Read,
    output: &mut impl Write,
    payload_offset: u64,
) -> Result<u64, Error> {
    let mut input = Lookahead::new(input);
    let mut sealed = vec![0u8; BATCH_CHUNKS * SEALED_CHUNK_LEN];
    // Wiped when dropped: it held plaintext (an identity file's keys, say).
    let mut plain = zeroize::Zeroizing::new(vec![0u8; BATCH_CHUNKS * CHUNK_LEN]);
    let mut lens = Vec::with_capacity(BATCH_CHUNKS);
    let mut results: Vec<Opened> = Vec::with_capacity(BATCH_CHUNKS);
    let (mut counter, mut total) = (0u64, 0u64);
    loop {
        lens.clear();
        let mut ended = false;
        for slot in sealed.chunks_mut(SEALED_CHUNK_LEN) {
            let (n, eof) = input.fill(slot).map_err(Error::from_io)?;
            lens.push(n);
            if eof {
                ended = true;
                break;
            }
        }
        let (base, count) = (counter, lens.len());
        sealed
            .par_chunks(SEALED_CHUNK_LEN)
            .zip(plain.par_chunks_mut(CHUNK_LEN))
            .zip(lens.par_iter())
            .enumerate()
            .map(|(i, ((ct, out), len))| {
                open_chunk(
                    key,
                    base + i as u64,
                    ended && i + 1 == count,
                    &ct[..*len],
                    out,
                )
            })
            .collect_into_vec(&mut results);
        for (i, (out, opened)) in plain.chunks(CHUNK_LEN).zip(results.drain(..)).enumerate() {
            let index = base + i as u64;
            let (n, failure) = match opened {
                Opened::Plain(n) => (n, None),
                Opened::PlainThen(n, f) => (n, Some(f)),
                Opened::Failed(f) => (0, Some(f)),
            };
            output.write_all(&out[..n]).map_err(Error::from_io)?;
            total += n as u64;
            if let Some(failure) = failure {
                let offset = payload_offset
                    .saturating_add(16)
                    .saturating_add(index.saturating_mul(SEALED_CHUNK_LEN as u64));
                return Err(Error::Payload {
                    chunk: index,
                    offset,
                    failure,
                });
            }
        }
        counter += count as u64;
        if ended {
            return Ok(total);
        }
    }
}

/// Opens one chunk from `sealed` into `out`. A full chunk is tried with both flags (the input
/// stays intact), so a misplaced final chunk or a missing one is reported as such.
fn open_chunk(
    key: &PayloadKey,
    counter: u64,
    at_end: bool,
    sealed: &[u8],
    out: &mut [u8],
) -> Opened {
    if sealed.is_empty() && counter == 0 {
        return Opened::Failed(PayloadFailure::NoChunks);
    }
    if sealed.len() < TAG_LEN {
        return Opened::Failed(PayloadFailure::Truncated);
    }
    if at_end && sealed.len() == TAG_LEN && counter != 0 {
        return Opened::Failed(PayloadFailure::EmptyFinalChunk);
    }
    if let Some(n) = key.open_into(counter, at_end, sealed, out) {
        return Opened::Plain(n);
    }
    if sealed.len() == SEALED_CHUNK_LEN && key.open_into(counter, !at_end, sealed, out).is_some() {
        // At the end but not final: cut at a chunk boundary. Final but not at the end: data
        // follows the last chunk.
        let failure = if at_end {
            PayloadFailure::Truncated
        } else {
            PayloadFailure::TrailingData
        };
        return Opened::PlainThen(CHUNK_LEN, failure);
    }
    Opened::Failed(PayloadFailure::Tampered)
}
