//! The small subset of DER that PKCS#8 (RFC 5958) and SubjectPublicKeyInfo (RFC 5280) need.
//!
//! Only definite, minimal lengths are accepted (DER), every read is bounds-checked, and errors
//! carry the byte offset of the element that is wrong.

use super::SignError;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// A cursor over DER input that knows its absolute offset, for error messages.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    base: usize,
}

/// One element: its tag, its content and where it started.
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub offset: usize,
}

impl<'a> Element<'a> {
    /// A reader over this element's content (for constructed types).
    pub fn reader(&self) -> Reader<'a> {
        Reader {
            input: self.content,
            pos: 0,
            base: self.offset + header_len(self.content.len()),
        }
    }
}

fn header_len(content_len: usize) -> usize {
    match content_len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        _ => 5,
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> SignError {
    SignError::MalformedDer {
        offset,
        what: what.into(),
    }
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            base: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Reads the next element of any tag.
    pub fn any(&mut self) -> Result<Element<'a>, SignError> {
        let start = self.offset();
        let tag = *self
            .input
            .get(self.pos)
            .ok_or_else(|| malformed(start, "unexpected end of input"))?;
        let first = *self
            .input
            .get(self.pos + 1)
            .ok_or_else(|| malformed(start, "truncated length"))?;
        let (len, len_bytes) = if first < 0x80 {
            (usize::from(first), 1)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 3 {
                return Err(malformed(start, "unsupported or indefinite length"));
            }
            let bytes = self
                .input
                .get(self.pos + 2..self.pos + 2 + n)
                .ok_or_else(|| malformed(start, "truncated length"))?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 || bytes.first() == Some(&0) {
                return Err(malformed(start, "non-minimal length (not DER)"));
            }
            (len, 1 + n)
        };
        let content_start = self.pos + 1 + len_bytes;
        let content_end = content_start
            .checked_add(len)
            .ok_or_else(|| malformed(start, "length overflow"))?;
        let content = self
            .input
            .get(content_start..content_end)
            .ok_or_else(|| malformed(start, format!("element of {len} bytes runs past the end")))?;
        self.pos = content_end;
        Ok(Element {
            tag,
            content,
            offset: start,
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Element<'a>, SignError> {
        let element = self.any()?;
        if element.tag != tag {
            return Err(malformed(
                element.offset,
                format!(
                    "expected {what} (tag 0x{tag:02x}), found tag 0x{:02x}",
                    element.tag
                ),
            ));
        }
        Ok(element)
    }

    /// Fails unless all input was consumed.
    pub fn finish(&self, what: &str) -> Result<(), SignError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(malformed(
                self.offset(),
                format!("trailing data after {what}"),
            ))
        }
    }
}

/// Encodes one element with a DER length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(header_len(len) + len);
    out.push(tag);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "each byte is masked to 8 bits"
    )]
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xffff => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// `SEQUENCE { OID, [params OID] }` — an AlgorithmIdentifier.
pub(crate) fn algorithm_identifier(oid: &[u8], param_oid: Option<&[u8]>) -> Vec<u8> {
    let mut content = tlv(TAG_OID, oid);
    if let Some(param) = param_oid {
        content.extend_from_slice(&tlv(TAG_OID, param));
    }
    tlv(TAG_SEQUENCE, &content)
}

/// Parses an AlgorithmIdentifier into (algorithm OID, optional parameter OID).
pub(crate) fn read_algorithm_identifier<'a>(
    reader: &mut Reader<'a>,
) -> Result<(&'a [u8], Option<&'a [u8]>), SignError> {
    let seq = reader.expect(TAG_SEQUENCE, "AlgorithmIdentifier")?;
    let mut inner = seq.reader();
    let oid = inner.expect(TAG_OID, "algorithm OID")?.content;
    let param = if inner.is_empty() {
        None
    } else {
        Some(
            inner
                .expect(TAG_OID, "algorithm parameter (named curve OID)")?
                .content,
        )
    };
    inner.finish("AlgorithmIdentifier")?;
    Ok((oid, param))
}
