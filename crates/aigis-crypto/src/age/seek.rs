//! Random access to a binary age file: `Read + Seek` over the plaintext, decrypting only the
//! chunks touched (one chunk cached). The final chunk is authenticated when the reader opens,
//! so the plaintext length it reports is trustworthy, as the spec requires before seeking from
//! the end.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::header::{Header, read_nonce};
use super::stream::{CHUNK_LEN, PayloadKey, SEALED_CHUNK_LEN, TAG_LEN};
use super::{Error, Identity, PayloadFailure, looks_armored, unwrap_file_key};

/// A decrypting `Read + Seek` view of an age file's plaintext.
pub struct SeekableReader<R> {
    inner: R,
    key: PayloadKey,
    /// Where chunk 0 starts in `inner`.
    payload_start: u64,
    chunks: u64,
    plain_len: u64,
    pos: u64,
    cached: Option<u64>,
    buf: zeroize::Zeroizing<Vec<u8>>,
    plain: usize,
}

fn payload_err(chunk: u64, offset: u64, failure: PayloadFailure) -> Error {
    Error::Payload {
        chunk,
        offset,
        failure,
    }
}

impl<R: Read + Seek> SeekableReader<R> {
    /// Reads the header, unwraps the file key with `identities` and authenticates the final
    /// chunk.
    pub fn new(identities: &[Identity], mut inner: R) -> Result<Self, Error> {
        inner.seek(SeekFrom::Start(0))?;
        let mut buffered = BufReader::new(&mut inner);
        if looks_armored(std::io::BufRead::fill_buf(&mut buffered)?) {
            return Err(Error::ArmoredNotSeekable);
        }
        let header = Header::parse(&mut buffered)?;
        let file_key = unwrap_file_key(&header, identities)?;
        let nonce = read_nonce(&mut buffered, header.len)?;
        drop(buffered);
        let key = PayloadKey::derive(&file_key, &nonce)?;
        let payload_start = header.len + 16;
        let end = inner.seek(SeekFrom::End(0))?;
        let payload_len = end.saturating_sub(payload_start);
        if payload_len == 0 {
            return Err(payload_err(0, payload_start, PayloadFailure::NoChunks));
        }
        let sealed = SEALED_CHUNK_LEN as u64;
        let chunks = payload_len.div_ceil(sealed);
        let last_len = payload_len - (chunks - 1) * sealed;
        if last_len < TAG_LEN as u64 {
            return Err(payload_err(
                chunks - 1,
                end - last_len,
                PayloadFailure::Truncated,
            ));
        }
        let plain_len = payload_len - chunks * TAG_LEN as u64;
        let mut reader = Self {
            inner,
            key,
            payload_start,
            chunks,
            plain_len,
            pos: 0,
            cached: None,
            buf: zeroize::Zeroizing::new(vec![0u8; SEALED_CHUNK_LEN]),
            plain: 0,
        };
        reader.load(chunks - 1)?;
        Ok(reader)
    }

    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    /// True when the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.plain_len == 0
    }

    fn load(&mut self, chunk: u64) -> Result<(), Error> {
        if self.cached == Some(chunk) {
            return Ok(());
        }
        self.cached = None;
        let offset = self.payload_start + chunk * SEALED_CHUNK_LEN as u64;
        let last = chunk + 1 == self.chunks;
        let len = if last {
            usize::try_from(self.plain_len - chunk * CHUNK_LEN as u64).unwrap_or(CHUNK_LEN)
                + TAG_LEN
        } else {
            SEALED_CHUNK_LEN
        };
        if last && len == TAG_LEN && chunk != 0 {
            return Err(payload_err(chunk, offset, PayloadFailure::EmptyFinalChunk));
        }
        self.inner.seek(SeekFrom::Start(offset))?;
        self.inner.read_exact(&mut self.buf[..len])?;
        let n = self
            .key
            .open(chunk, last, &mut self.buf[..len])
            .ok_or_else(|| payload_err(chunk, offset, PayloadFailure::Tampered))?;
        self.plain = n;
        self.cached = Some(chunk);
        Ok(())
    }
}

impl<R: Read + Seek> Read for SeekableReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plain_len || out.is_empty() {
            return Ok(0);
        }
        let chunk = self.pos / CHUNK_LEN as u64;
        self.load(chunk).map_err(|e| match e {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })?;
        let within = usize::try_from(self.pos % CHUNK_LEN as u64).unwrap_or(0);
        let n = (self.plain - within).min(out.len());
        out[..n].copy_from_slice(&self.buf[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekableReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plain_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the plaintext",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}
