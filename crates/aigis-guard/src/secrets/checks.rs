//! Checksum and structural checks run on a rule's candidate value.
//!
//! Each check returns a [`Verdict`]: `Reject` drops the candidate entirely (a checksum-invalid
//! GitHub token is not a GitHub token, and is not re-reported as anything else), `Valid` marks
//! the detection `validated`, `Plausible` keeps it unvalidated.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Which validation a rule's value goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// No check beyond the pattern.
    None,
    /// GitHub / npm token: the last 6 characters are the base62 CRC32 of the 30 before them.
    Crc32Base62,
    /// age secret key: bech32 checksum with HRP `age-secret-key-`.
    AgeBech32,
    /// JWT: header and payload are base64url JSON objects, the header has a string `alg`.
    Jwt,
    /// Complete PEM block whose body is base64 DER (a SEQUENCE) or carries RFC 1421 headers.
    PemDer,
    /// Complete PEM block whose body decodes to the `openssh-key-v1\0` format.
    PemOpenSsh,
    /// Complete OpenPGP armor: packet-tagged body, and the CRC-24 line must match when present.
    PgpArmor,
    /// Discord bot token: the first segment is the base64 of the bot's numeric id.
    DiscordBot,
    /// HTTP Basic credentials: base64 of `user:password`.
    BasicAuth,
    /// PyPI token: the part after `pypi-` is a base64url macaroon (v2 binary format) ending in a
    /// 32-byte signature field. Confirms but never rejects: the prefix alone is distinctive.
    PypiMacaroon,
}

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The value fails the check: not reported.
    Reject,
    /// No check applies or it cannot decide: reported unvalidated.
    Plausible,
    /// The checksum or structure was confirmed.
    Valid,
}

impl Check {
    /// Whether this check can confirm a value (used for [`super::RuleInfo::checksum`]).
    pub(super) fn validates(self) -> bool {
        self != Check::None
    }

    /// Whether a failed check drops the candidate (rather than reporting it unvalidated).
    pub(super) fn rejects(self) -> bool {
        !matches!(self, Check::None | Check::PypiMacaroon)
    }

    pub(super) fn run(self, value: &str) -> Verdict {
        let ok = match self {
            Check::None => return Verdict::Plausible,
            Check::Crc32Base62 => crc32_base62_valid(value),
            Check::AgeBech32 => bech32_valid(value, "age-secret-key-"),
            Check::Jwt => jwt_valid(value),
            Check::PemDer => {
                pem_body(value).is_some_and(|b| b.encrypted || b.der.first() == Some(&0x30))
            }
            Check::PemOpenSsh => {
                pem_body(value).is_some_and(|b| b.der.starts_with(b"openssh-key-v1\0"))
            }
            Check::PgpArmor => pgp_valid(value),
            Check::DiscordBot => discord_valid(value),
            Check::BasicAuth => basic_valid(value),
            Check::PypiMacaroon => value
                .strip_prefix("pypi-")
                .and_then(|body| B64URL.decode(body).ok())
                .is_some_and(|m| macaroon_v2_valid(&m)),
        };
        match (ok, self.rejects()) {
            (true, _) => Verdict::Valid,
            (false, true) => Verdict::Reject,
            (false, false) => Verdict::Plausible,
        }
    }
}

/// Lenient base64 (standard or URL-safe alphabet chosen by the caller): padding optional,
/// trailing bits allowed, because tokens are often stored unpadded.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const B64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const B64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of the CRC32 (IEEE) of `random`, left-padded with `0` to 6 characters, as GitHub and
/// npm append it to their tokens.
pub(super) fn crc32_base62(random: &[u8]) -> [u8; 6] {
    let mut n = crc32fast::hash(random);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `prefix_` + 30 random base62 + 6 checksum characters.
fn crc32_base62_valid(token: &str) -> bool {
    let bytes = token.as_bytes();
    let Some(tail) = bytes
        .len()
        .checked_sub(36)
        .and_then(|start| bytes.get(start..))
    else {
        return false;
    };
    let (random, checksum) = tail.split_at(30);
    crc32_base62(random) == checksum
}

pub(super) use crate::pii::checksum::{BECH32_CHARSET, bech32_polymod};

/// HRP expansion then data values, as the polymod input.
pub(super) fn bech32_values(hrp: &str, data: &[u8]) -> Vec<u8> {
    let hrp = hrp.as_bytes();
    let mut v: Vec<u8> = hrp.iter().map(|c| c >> 5).collect();
    v.push(0);
    v.extend(hrp.iter().map(|c| c & 31));
    v.extend_from_slice(data);
    v
}

fn bech32_valid(value: &str, hrp: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let Some(data) = lower
        .strip_prefix(hrp)
        .and_then(|rest| rest.strip_prefix('1'))
    else {
        return false;
    };
    let mut values = Vec::with_capacity(data.len());
    for c in data.bytes() {
        match BECH32_CHARSET.iter().position(|&x| x == c) {
            #[expect(clippy::cast_possible_truncation, reason = "position < 32")]
            Some(p) => values.push(p as u8),
            None => return false,
        }
    }
    data.len() > 6 && bech32_polymod(bech32_values(hrp, &values)) == 1
}

fn json_object(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = B64URL.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

fn jwt_valid(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    json_object(header).is_some_and(|h| h.get("alg").is_some_and(serde_json::Value::is_string))
        && json_object(payload).is_some()
}

struct PemBody {
    der: Vec<u8>,
    /// RFC 1421 `Proc-Type: 4,ENCRYPTED` header: the body is ciphertext.
    encrypted: bool,
}

/// Decodes the base64 body between the BEGIN and END lines, skipping `Key: value` headers.
fn pem_body(block: &str) -> Option<PemBody> {
    let start = block.find("-----\n").or_else(|| block.find("-----\r\n"))?;
    let end = block.rfind("-----END")?;
    let body = block.get(start + 5..end)?;
    let mut b64 = String::with_capacity(body.len());
    let mut encrypted = false;
    for line in body.lines() {
        let line = line.trim();
        if line.contains(':') {
            encrypted |= line.contains("ENCRYPTED");
            continue;
        }
        b64.push_str(line);
    }
    let der = B64.decode(b64.as_bytes()).ok()?;
    (der.len() >= 16).then_some(PemBody { der, encrypted })
}

/// RFC 4880 §6.1 CRC-24.
pub(super) fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

fn pgp_valid(block: &str) -> bool {
    let Some(start) = block.find("-----\n").or_else(|| block.find("-----\r\n")) else {
        return false;
    };
    let Some(end) = block.rfind("-----END") else {
        return false;
    };
    let Some(body) = block.get(start + 5..end) else {
        return false;
    };
    let mut b64 = String::with_capacity(body.len());
    let mut crc_line = None;
    for line in body.lines().map(str::trim) {
        if line.contains(':') {
            continue;
        }
        if let Some(c) = line.strip_prefix('=').filter(|c| c.len() == 4) {
            crc_line = Some(c);
        } else {
            b64.push_str(line);
        }
    }
    let Ok(data) = B64.decode(b64.as_bytes()) else {
        return false;
    };
    let tagged = data.first().is_some_and(|b| b & 0x80 != 0);
    let crc_ok = match crc_line.map(|c| B64.decode(c)) {
        None => true,
        Some(Ok(c)) if c.len() == 3 => {
            u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]) == crc24(&data)
        }
        Some(_) => false,
    };
    tagged && crc_ok
}

fn discord_valid(token: &str) -> bool {
    let Some(id) = token.split('.').next() else {
        return false;
    };
    B64URL
        .decode(id)
        .is_ok_and(|d| (17..=20).contains(&d.len()) && d.iter().all(u8::is_ascii_digit))
}

fn basic_valid(value: &str) -> bool {
    let Ok(decoded) = B64.decode(value) else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return false;
    };
    match text.split_once(':') {
        Some((user, password)) => {
            !user.is_empty() && !password.is_empty() && text.chars().all(|c| !c.is_control())
        }
        None => false,
    }
}

/// Cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    /// Unsigned LEB128, at most 4 bytes (lengths in a token are small).
    fn varint(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in [0, 7, 14, 21] {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.bytes.len()).then(|| self.pos = end)
    }
    /// Fields up to and including the end-of-section byte; returns the field types seen.
    fn section(&mut self) -> Option<u32> {
        let mut seen = 0u32;
        loop {
            match self.byte()? {
                0 => return Some(seen),
                t @ 1..=31 => {
                    seen |= 1 << t;
                    let len = self.varint()?;
                    self.skip(len)?;
                }
                _ => return None,
            }
        }
    }
}

/// Macaroon v2 binary serialisation: version 2, a header section with an identifier (field 2),
/// caveat sections, an empty section, then the signature field (6) of exactly 32 bytes.
fn macaroon_v2_valid(bytes: &[u8]) -> bool {
    const MAX_CAVEATS: usize = 256;
    let mut r = Reader { bytes, pos: 0 };
    if r.byte() != Some(2) || r.section().is_none_or(|seen| seen & (1 << 2) == 0) {
        return false;
    }
    for _ in 0..MAX_CAVEATS {
        if r.bytes.get(r.pos) == Some(&0) {
            r.pos += 1;
            return r.byte() == Some(6) && r.varint() == Some(32) && r.bytes.len() - r.pos == 32;
        }
        if r.section().is_none() {
            return false;
        }
    }
    false
}
