//! Bounded reads for the header parsers in this folder: every read names what it reads, checks
//! that it lies inside the input and under a cap before allocating, and fails with a
//! [`ReadError`] instead of panicking. (A private stand-in for the crate's shared reader; the
//! two can be unified without changing the parsers' behaviour.)

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use crate::Input;

/// Why a bounded read failed; the message names the structure and the byte offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ReadError {
    /// A declared length is above the cap for that structure.
    #[error("{what} at byte {offset} declares {len} bytes, above the {max}-byte limit")]
    TooLarge {
        what: &'static str,
        offset: u64,
        len: u64,
        max: u64,
    },
    /// The read would end past the end of the input.
    #[error("{what} at byte {offset} needs {len} bytes but the input ends at byte {end}")]
    Truncated {
        what: &'static str,
        offset: u64,
        len: u64,
        end: u64,
    },
    /// The underlying source failed.
    #[error("{what} at byte {offset}: {source}")]
    Io {
        what: &'static str,
        offset: u64,
        source: std::io::Error,
    },
}

/// Reads exactly `len` bytes at `offset`, refusing lengths above `max` or past the input's end.
pub(crate) fn read_at(
    input: &mut Input<'_>,
    offset: u64,
    len: u64,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, ReadError> {
    if len > max {
        return Err(ReadError::TooLarge {
            what,
            offset,
            len,
            max,
        });
    }
    let end = offset.checked_add(len).filter(|end| *end <= input.len);
    if end.is_none() {
        return Err(ReadError::Truncated {
            what,
            offset,
            len,
            end: input.len,
        });
    }
    let io = |source| ReadError::Io {
        what,
        offset,
        source,
    };
    input.source.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![
        0;
        usize::try_from(len).map_err(|_| ReadError::TooLarge {
            what,
            offset,
            len,
            max,
        })?
    ];
    input.source.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// A forward reader over a byte range of an input that tracks its position, so parsers of
/// sequential headers (GGUF, protobuf) can read small fields and skip large ones (tensor data,
/// vocabularies) without holding them in memory.
pub(crate) struct Stream<'a> {
    reader: BufReader<&'a mut dyn crate::Source>,
    pos: u64,
    len: u64,
}

impl<'a> Stream<'a> {
    /// A stream over `input` starting at byte `start`.
    pub(crate) fn new(input: &'a mut Input<'_>, start: u64) -> Result<Self, ReadError> {
        let len = input.len;
        input
            .source
            .seek(SeekFrom::Start(start))
            .map_err(|source| ReadError::Io {
                what: "start of stream",
                offset: start,
                source,
            })?;
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, &mut *input.source),
            pos: start,
            len,
        })
    }

    /// The current byte offset from the start of the input.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Total length of the input.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    fn check(&self, len: u64, what: &'static str) -> Result<(), ReadError> {
        match self.pos.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ReadError::Truncated {
                what,
                offset: self.pos,
                len,
                end: self.len,
            }),
        }
    }

    /// Reads exactly `N` bytes.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ReadError> {
        self.check(N as u64, what)?;
        let mut buf = [0; N];
        let offset = self.pos;
        self.reader
            .read_exact(&mut buf)
            .map_err(|source| ReadError::Io {
                what,
                offset,
                source,
            })?;
        self.pos += N as u64;
        Ok(buf)
    }

    /// Reads `len` bytes, refusing more than `max`.
    pub(crate) fn bytes(
        &mut self,
        len: u64,
        max: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, ReadError> {
        if len > max {
            return Err(ReadError::TooLarge {
                what,
                offset: self.pos,
                len,
                max,
            });
        }
        self.check(len, what)?;
        let offset = self.pos;
        let mut buf = vec![0; usize::try_from(len).unwrap_or(0)];
        self.reader
            .read_exact(&mut buf)
            .map_err(|source| ReadError::Io {
                what,
                offset,
                source,
            })?;
        self.pos += len;
        Ok(buf)
    }

    /// Skips `len` bytes without reading them into memory.
    pub(crate) fn skip(&mut self, len: u64, what: &'static str) -> Result<(), ReadError> {
        self.check(len, what)?;
        let offset = self.pos;
        let io = |source| ReadError::Io {
            what,
            offset,
            source,
        };
        let buffered = self.reader.buffer().len() as u64;
        if len <= buffered {
            // `len` fits in usize because it is at most the buffer length.
            self.reader.consume(usize::try_from(len).unwrap_or(0));
        } else {
            let target = offset + len;
            self.reader.seek(SeekFrom::Start(target)).map_err(io)?;
        }
        self.pos += len;
        Ok(())
    }

    /// Reads one byte.
    pub(crate) fn byte(&mut self, what: &'static str) -> Result<u8, ReadError> {
        Ok(self.array::<1>(what)?[0])
    }
}
