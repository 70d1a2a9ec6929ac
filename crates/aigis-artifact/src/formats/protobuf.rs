//! A minimal protobuf wire reader for the few fields the ONNX and TensorFlow scans need. It
//! streams: length-delimited fields that are not wanted (tensor bytes, large constants) are
//! skipped with a seek, never read, so memory stays bounded whatever the file size. Every
//! length is checked against the enclosing message before use.

use super::bounded::{ReadError, Stream};

/// Fields read or skipped per file before giving up (bounds time on pathological inputs).
pub(crate) const MAX_FIELDS: u64 = 200_000_000;
/// Longest string (name, op type, path) read into memory.
pub(crate) const MAX_STRING: u64 = 64 * 1024;

/// Why the wire reader stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WireError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("malformed protobuf at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("more than {MAX_FIELDS} protobuf fields; the file was not read to the end")]
    TooManyFields,
}

/// One field's payload: scalars are already consumed; a length-delimited payload starts at the
/// current position and must be read or skipped by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Varint(u64),
    Fixed,
    Len(u64),
}

pub(crate) struct Wire<'a> {
    pub(crate) stream: Stream<'a>,
    fields: u64,
}

impl<'a> Wire<'a> {
    pub(crate) fn new(stream: Stream<'a>) -> Self {
        Self { stream, fields: 0 }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.stream.pos()
    }

    fn malformed(&self, message: impl Into<String>) -> WireError {
        WireError::Malformed {
            offset: self.stream.pos(),
            message: message.into(),
        }
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.stream.byte("protobuf varint")?;
            if shift == 63 && byte > 1 {
                return Err(self.malformed("varint longer than 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    /// The next field of the message that ends at `end`, or `None` at its end.
    pub(crate) fn next(&mut self, end: u64) -> Result<Option<(u64, Field)>, WireError> {
        if self.stream.pos() >= end {
            return Ok(None);
        }
        self.fields += 1;
        if self.fields > MAX_FIELDS {
            return Err(WireError::TooManyFields);
        }
        let key = self.varint()?;
        let number = key >> 3;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.stream.skip(8, "protobuf fixed64")?;
                Field::Fixed
            }
            5 => {
                self.stream.skip(4, "protobuf fixed32")?;
                Field::Fixed
            }
            2 => {
                let len = self.varint()?;
                if self.stream.pos().checked_add(len).is_none_or(|e| e > end) {
                    return Err(self.malformed(format!(
                        "field {number} declares {len} bytes, past the end of its message at byte {end}"
                    )));
                }
                Field::Len(len)
            }
            t => {
                return Err(self.malformed(format!("field {number} has unsupported wire type {t}")));
            }
        };
        if number == 0 {
            return Err(self.malformed("field number 0"));
        }
        if self.stream.pos() > end {
            return Err(self.malformed("field runs past the end of its message"));
        }
        Ok(Some((number, field)))
    }

    /// Skips a field's payload if it is length-delimited (scalars are already consumed).
    pub(crate) fn skip(&mut self, field: Field) -> Result<(), WireError> {
        if let Field::Len(len) = field {
            self.stream.skip(len, "protobuf field")?;
        }
        Ok(())
    }

    /// Reads a length-delimited payload as text (lossily), refusing more than [`MAX_STRING`].
    pub(crate) fn string(&mut self, field: Field) -> Result<String, WireError> {
        match field {
            Field::Len(len) => {
                let bytes = self.stream.bytes(len, MAX_STRING, "protobuf string")?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => Err(self.malformed("expected a length-delimited string")),
        }
    }

    /// The end offset of a sub-message whose payload starts here.
    pub(crate) fn sub_end(&self, field: Field) -> Result<u64, WireError> {
        match field {
            Field::Len(len) => Ok(self.stream.pos() + len),
            _ => Err(self.malformed("expected a length-delimited message")),
        }
    }
}

/// Encoding helpers for tests that build protobuf fixtures.
#[cfg(test)]
pub(crate) mod encode {
    pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A length-delimited field.
    pub(crate) fn bytes(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, number << 3 | 2);
        varint(&mut out, payload.len() as u64);
        out.extend(payload);
        out
    }

    pub(crate) fn string(number: u64, s: &str) -> Vec<u8> {
        bytes(number, s.as_bytes())
    }

    pub(crate) fn int(number: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, number << 3);
        varint(&mut out, v);
        out
    }
}
