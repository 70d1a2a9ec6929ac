//! The textual header: version line, recipient stanzas, and the HMAC that binds them to the
//! file key. Parsing is strict (every deviation from the ABNF is an error) and bounded by the
//! `MAX_*` limits below, checked before anything grows.

use std::io::{BufRead, Read};

use aws_lc_rs::hmac;

use super::encoding::{b64_decode, b64_decode_exact, b64_encode};
use super::primitives::{FileKey, hkdf32};
use super::{Error, MAX_HEADER_LEN, MAX_STANZAS};

const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
const VERSION_PREFIX: &[u8] = b"age-encryption.org/";
/// Longest argument line accepted; an mlkem768x25519 line is about 1,515 bytes.
pub const MAX_ARGUMENT_LINE: usize = 8 * 1024;
const BODY_COLUMNS: usize = 64;

/// One recipient stanza: its arguments and its (decoded) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// Space-separated arguments; the first names the recipient type.
    pub args: Vec<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Stanza {
    /// The recipient type (first argument).
    pub fn kind(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

/// A parsed header: the stanzas, the MAC and the exact bytes the MAC covers.
#[derive(Debug, Clone)]
pub struct Header {
    /// Recipient stanzas in file order.
    pub stanzas: Vec<Stanza>,
    mac: [u8; 32],
    mac_input: Vec<u8>,
    /// Length of the whole header in bytes, including the MAC line.
    pub len: u64,
}

fn mac_key(file_key: &FileKey) -> Result<hmac::Key, Error> {
    let key = hkdf32(file_key.expose(), b"", b"header")?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
}

impl Header {
    /// Checks the header MAC under `file_key` in constant time.
    pub(crate) fn verify_mac(&self, file_key: &FileKey) -> Result<(), Error> {
        hmac::verify(&mac_key(file_key)?, &self.mac_input, &self.mac).map_err(|_| Error::HeaderMac)
    }

    /// Encodes `stanzas` and appends the MAC under `file_key`.
    pub(crate) fn encode(stanzas: &[Stanza], file_key: &FileKey) -> Result<Vec<u8>, Error> {
        let mut out = VERSION_LINE.to_vec();
        for s in stanzas {
            out.extend_from_slice(b"->");
            for a in &s.args {
                out.push(b' ');
                out.extend_from_slice(a.as_bytes());
            }
            out.push(b'\n');
            let body = b64_encode(&s.body);
            let mut lines = body.as_bytes().chunks(BODY_COLUMNS).peekable();
            let mut last_len = 0;
            while let Some(line) = lines.next() {
                out.extend_from_slice(line);
                out.push(b'\n');
                last_len = line.len();
                if lines.peek().is_none() {
                    break;
                }
            }
            // The body always ends with a line shorter than 64 columns, possibly empty.
            if last_len == BODY_COLUMNS || body.is_empty() {
                out.push(b'\n');
            }
        }
        out.extend_from_slice(b"---");
        let tag = hmac::sign(&mac_key(file_key)?, &out);
        out.push(b' ');
        out.extend_from_slice(b64_encode(tag.as_ref()).as_bytes());
        out.push(b'\n');
        Ok(out)
    }

    /// Reads and parses a header from `input`, leaving it positioned at the payload nonce.
    pub fn parse(input: &mut impl BufRead) -> Result<Self, Error> {
        let mut raw: Vec<u8> = Vec::new();
        let first = read_line(input, &mut raw, MAX_ARGUMENT_LINE)?;
        if first != VERSION_LINE {
            return Err(
                if first.starts_with(VERSION_PREFIX) && first.ends_with(b"\n") {
                    header_err(
                        0,
                        "unsupported version (only age-encryption.org/v1 is known)",
                    )
                } else {
                    header_err(
                        0,
                        "not an age file: the first line is not 'age-encryption.org/v1'",
                    )
                },
            );
        }
        let mut stanzas = Vec::new();
        loop {
            let at = raw.len();
            let line = read_line(input, &mut raw, MAX_ARGUMENT_LINE)?;
            if let Some(rest) = line.strip_prefix(b"-> ") {
                if stanzas.len() >= MAX_STANZAS {
                    return Err(header_err(at, "too many recipient stanzas"));
                }
                let args = parse_args(rest, at)?;
                let body = read_body(input, &mut raw)?;
                stanzas.push(Stanza { args, body });
            } else if line.starts_with(b"---") {
                let mac = parse_mac_line(&line, at)?;
                if stanzas.is_empty() {
                    return Err(header_err(at, "the header has no recipient stanza"));
                }
                let mac_input = raw[..at + 3].to_vec();
                return Ok(Self {
                    stanzas,
                    mac,
                    mac_input,
                    len: raw.len() as u64,
                });
            } else {
                return Err(header_err(
                    at,
                    "expected a stanza ('-> ') or the MAC line ('--- ')",
                ));
            }
        }
    }
}

fn header_err(offset: usize, reason: &str) -> Error {
    Error::Header {
        offset: offset as u64,
        reason: reason.to_owned(),
    }
}

/// Reads one LF-terminated line (LF included) into `raw` and returns a copy of it.
fn read_line(input: &mut impl BufRead, raw: &mut Vec<u8>, max: usize) -> Result<Vec<u8>, Error> {
    let at = raw.len();
    if at >= MAX_HEADER_LEN {
        return Err(header_err(at, "header exceeds MAX_HEADER_LEN"));
    }
    let mut line = Vec::new();
    let limit = (max + 1).min(MAX_HEADER_LEN - at + 1) as u64;
    input
        .by_ref()
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(Error::from_io)?;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 >= limit {
            header_err(at, "line too long")
        } else {
            header_err(at, "unexpected end of file in the header")
        });
    }
    raw.extend_from_slice(&line);
    Ok(line)
}

fn parse_args(rest: &[u8], at: usize) -> Result<Vec<String>, Error> {
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let mut args = Vec::new();
    for arg in rest.split(|b| *b == b' ') {
        if arg.is_empty() {
            return Err(header_err(at, "empty stanza argument"));
        }
        if !arg.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(header_err(
                at,
                "stanza argument has a character outside VCHAR",
            ));
        }
        args.push(String::from_utf8_lossy(arg).into_owned());
    }
    Ok(args)
}

fn read_body(input: &mut impl BufRead, raw: &mut Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut text = Vec::new();
    loop {
        let at = raw.len();
        let line = read_line(input, raw, BODY_COLUMNS)?;
        let content = &line[..line.len() - 1];
        if !content
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        {
            return Err(header_err(at, "stanza body line is not unpadded base64"));
        }
        text.extend_from_slice(content);
        if content.len() < BODY_COLUMNS {
            return b64_decode(&text)
                .ok_or_else(|| header_err(at, "stanza body is not canonical base64"));
        }
    }
}

fn parse_mac_line(line: &[u8], at: usize) -> Result<[u8; 32], Error> {
    let b64 = line
        .strip_prefix(b"--- ")
        .and_then(|r| r.strip_suffix(b"\n"))
        .filter(|r| r.len() == 43)
        .ok_or_else(|| header_err(at, "malformed MAC line"))?;
    b64_decode_exact::<32>(b64).ok_or_else(|| header_err(at, "MAC is not canonical base64"))
}

/// Reads the 16-byte payload nonce that follows the header.
pub(crate) fn read_nonce(input: &mut impl Read, header_len: u64) -> Result<[u8; 16], Error> {
    let mut nonce = [0u8; 16];
    let mut got = 0;
    while got < nonce.len() {
        match input.read(&mut nonce[got..]) {
            Ok(0) => {
                return Err(Error::Header {
                    offset: header_len,
                    reason: "file ends before the 16-byte payload nonce".to_owned(),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from_io(e)),
        }
    }
    Ok(nonce)
}
