//! Candidate patterns and the validators that turn a regex match into typed candidates.
//!
//! Every pattern is ASCII-word-bounded (`(?-u:\b)`) so the lazy DFA never falls back to the
//! slow engine on non-ASCII text; trimming only ever removes ASCII bytes, so spans stay on
//! UTF-8 character boundaries.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::checksum as ck;
use super::entity::EntityKind as K;

/// One typed candidate before context scoring and overlap resolution.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub kind: K,
    pub span: Range<usize>,
    pub validated: bool,
    /// Replaces the entity's base score (e.g. an unchecksummed lower-case Ethereum address).
    pub score: Option<f32>,
}

/// Which validator a pattern's matches go to.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Digits,
    Phone,
    Email,
    Url,
    Ipv4,
    Ipv6,
    Mac,
    Uuid,
    Crypto,
    Iban,
    AlnumId,
    UsLetterDigits,
    Date,
    Person,
    Street,
}

const B: &str = r"(?-u:\b)";

/// `(shape, pattern)`; `{B}` is replaced by an ASCII word boundary.
pub const PATTERNS: &[(Shape, &str)] = &[
    // Digit runs with single space/dash separators: cards, SSN/ITIN, NHS, PESEL, DE tax id,
    // TFN, bank/passport/licence numbers.
    (Shape::Digits, r"{B}[0-9](?:[ -]?[0-9]){6,18}{B}"),
    (Shape::Phone, r"(?:\+|\(|{B})[0-9][0-9 ().-]{5,22}[0-9]{B}"),
    (
        Shape::Email,
        r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}{B}",
    ),
    (
        Shape::Url,
        r"(?i){B}(?:(?:https?|ftp)://|www\.)[^\s<>\x22'\x60]+",
    ),
    (Shape::Ipv4, r"{B}[0-9]{1,3}(?:\.[0-9]{1,3}){3}{B}"),
    (
        Shape::Ipv6,
        r"(?i)(?:[0-9a-f]{1,4}|:)?:[0-9a-f:]*:[0-9a-f.:]*",
    ),
    (
        Shape::Mac,
        r"(?i){B}(?:[0-9a-f]{2}(?::[0-9a-f]{2}){5}|[0-9a-f]{2}(?:-[0-9a-f]{2}){5}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}){B}",
    ),
    (
        Shape::Uuid,
        r"(?i){B}[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}{B}",
    ),
    (
        Shape::Crypto,
        r"{B}(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}|0x[0-9a-fA-F]{40}){B}",
    ),
    (Shape::Iban, r"{B}[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,34}"),
    // ES NIF/NIE, IT fiscal code, SG NRIC, IN PAN, UK NINO.
    (
        Shape::AlnumId,
        r"{B}(?:[0-9]{8}-?[A-Z]|[XYZ]-?[0-9]{7}-?[A-Z]|[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]|[STFG][0-9]{7}[A-Z]|[A-Z]{5}[0-9]{4}[A-Z]|[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]){B}",
    ),
    (Shape::UsLetterDigits, r"{B}[A-Z]{1,2}[0-9]{4,14}{B}"),
    (
        Shape::Date,
        r"(?i){B}(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{2}-[0-9]{2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? [0-9]{1,2}(?:st|nd|rd|th)?,? [0-9]{4}|[0-9]{1,2}(?:st|nd|rd|th)?(?: of)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?,? [0-9]{4}){B}",
    ),
    (
        Shape::Person,
        r"(?:{B}(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mme|Herr|Frau|Sr|Sra)\.?|(?i:my name is|name is|name:|je m'appelle|me llamo|ich heiße|mi chiamo))[ \t]{1,3}(\p{Lu}[\p{Ll}'-]+(?:[ \t]\p{Lu}\.|[ \t]\p{Lu}[\p{Ll}'-]+){0,2})",
    ),
    (
        Shape::Street,
        r"{B}[0-9]{1,6}[A-Za-z]?[ \t]+(?:\p{Lu}[\p{L}'-]*\.?[ \t]+){1,4}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Circle|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Alley|Crescent|Close){B}\.?",
    ),
];

/// Expand `{B}` in a pattern.
pub fn expand(p: &str) -> String {
    p.replace("{B}", B)
}

/// Separator-free ASCII alphanumerics of `s`, upper-cased, or `None` past `max` characters.
fn compact(s: &str, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len().min(max));
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            if out.len() == max {
                return None;
            }
            out.push(b.to_ascii_uppercase());
        }
    }
    Some(out)
}

/// Payment-card brand prefix and length rules (published IIN ranges).
fn card_brand_ok(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |n: usize| -> u32 {
        d.iter()
            .take(n)
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let (p2, p3, p4, p6) = (prefix(2), prefix(3), prefix(4), prefix(6));
    match d.first() {
        Some(b'4') => matches!(len, 13 | 16 | 19),
        Some(b'5') if (51..=55).contains(&p2) => len == 16,
        Some(b'2') if (2221..=2720).contains(&p4) => len == 16,
        Some(b'3') if p2 == 34 || p2 == 37 => len == 15,
        Some(b'3') if (3528..=3589).contains(&p4) => (16..=19).contains(&len),
        Some(b'3') if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 => {
            (14..=19).contains(&len)
        }
        Some(b'6')
            if p4 == 6011
                || (644..=649).contains(&p3)
                || p2 == 65
                || (622_126..=622_925).contains(&p6) =>
        {
            (16..=19).contains(&len)
        }
        Some(b'6') if p2 == 62 => (16..=19).contains(&len),
        Some(b'5' | b'6')
            if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763) =>
        {
            (12..=19).contains(&len)
        }
        _ => false,
    }
}

/// A digit run (with optional single separators). Tries the whole run, and when it yields
/// nothing validated, each separator-delimited suffix/prefix that could still be a card.
pub fn digits(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let Some(d) = compact(s, 19) else { return };
    let sep: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_digit()).collect();
    let uniform_sep = sep.windows(2).all(|w| w[0] == w[1]);
    let n = d.len();
    let push = |out: &mut Vec<Candidate>, kind, validated| {
        out.push(Candidate {
            kind,
            span: span.clone(),
            validated,
            score: None,
        });
    };
    if (13..=19).contains(&n) && card_brand_ok(&d) && ck::luhn_valid(&d) {
        push(out, K::CreditCard, true);
        return;
    }
    if !uniform_sep {
        return;
    }
    let groups: Vec<usize> = s.split([' ', '-']).map(str::len).collect();
    match n {
        9 => {
            let ssn_shape = groups == [3, 2, 4] || groups == [9];
            if ssn_shape && ck::itin_valid(&d) {
                push(out, K::UsItin, false);
            } else if ssn_shape && ck::ssn_valid(&d) {
                // Nine bare digits are an SSN only with context (see `needs_context`).
                push(out, K::UsSsn, false);
            }
            if groups == [9] || groups == [3, 3, 3] {
                if ck::au_tfn_valid(&d) {
                    push(out, K::AuTfn, true);
                }
                push(out, K::UsPassport, false);
            }
        }
        10 if (groups == [10] || groups == [3, 3, 4]) && ck::nhs_valid(&d) => {
            push(out, K::UkNhs, true);
        }
        11 if groups == [11] || groups == [2, 3, 3, 3] => {
            if ck::pesel_valid(&d) && groups == [11] {
                push(out, K::PlPesel, true);
            }
            if ck::de_tax_valid(&d) {
                push(out, K::DeTaxId, true);
            }
        }
        8 if groups == [8] && ck::au_tfn_valid(&d) => push(out, K::AuTfn, true),
        _ => {}
    }
    if groups.len() == 1 {
        if (8..=17).contains(&n) {
            push(out, K::UsBankNumber, false);
        }
        if (7..=12).contains(&n) {
            push(out, K::UsDriverLicense, false);
        }
    }
}

/// Nine bare digits: SSN only with context (otherwise any 9-digit number would be one).
pub fn bare_ssn(text: &str, c: &Candidate) -> bool {
    c.kind == K::UsSsn
        && text
            .get(c.span.clone())
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
}

/// Phone candidate: 7-15 digits, not glued to more digits, parsed by `phonenumber`
/// (international when it starts with `+`, else in `region`) and validated by its rules
/// ([`super::phone`]).
pub fn phone(
    text: &str,
    mut span: Range<usize>,
    region: phonenumber::country::Id,
    out: &mut Vec<Candidate>,
) {
    let bytes = text.as_bytes();
    let s = &text[span.clone()];
    let n = s.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&n) || s.contains("..") || s.contains("--") {
        return;
    }
    // An unbalanced leading '(' is not part of the number.
    if s.starts_with('(') && !s.contains(')') {
        span.start += 1;
    }
    if span.start > 0
        && bytes
            .get(span.start - 1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'+')
    {
        return;
    }
    let s = &text[span.clone()];
    if !s.starts_with('+') && region == phonenumber::country::Id::US && !nanp_shape(s) {
        return;
    }
    // The plain North American forms are judged without the parser (same verdict).
    let plain = if region == phonenumber::country::Id::US {
        super::phone::plain_nanp(s)
    } else {
        None
    };
    let valid = plain.unwrap_or_else(|| {
        let parsed = if s.starts_with('+') {
            phonenumber::parse(None, s)
        } else {
            phonenumber::parse(Some(region), s)
        };
        parsed.is_ok_and(|p| super::phone::is_valid(&p))
    });
    if valid {
        out.push(Candidate {
            kind: K::Phone,
            span,
            validated: true,
            score: None,
        });
    }
}

/// Necessary (not sufficient) shape of a North American number, checked before the parser:
/// 10 digits, or 11 starting with 1, with area code and exchange starting 2-9.
fn nanp_shape(s: &str) -> bool {
    let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
    let d = match d.len() {
        10 => &d[..],
        11 if d[0] == b'1' => &d[1..],
        _ => return false,
    };
    d[0] >= b'2' && d[3] >= b'2'
}

/// E-mail structure: local part 1-64 without leading/trailing/double dots, domain ≤ 253.
pub fn email(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let Some((local, domain)) = s.rsplit_once('@') else {
        return;
    };
    let lead = local.len() - local.trim_start_matches(['.', '%', '+', '-']).len();
    let local = &local[lead..];
    if local.is_empty()
        || local.len() > 64
        || domain.len() > 253
        || local.ends_with('.')
        || local.contains("..")
        || domain
            .split('.')
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return;
    }
    out.push(Candidate {
        kind: K::Email,
        span: span.start + lead..span.end,
        validated: false,
        score: None,
    });
}

/// URL: trims trailing punctuation and unbalanced closing brackets.
pub fn url(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let mut end = s.len();
    loop {
        let t = &s[..end];
        let Some(last) = t.bytes().last() else { return };
        let unbalanced = |open: char, close: u8| {
            last == close && t.matches(open).count() < t.bytes().filter(|&b| b == close).count()
        };
        if matches!(last, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'*')
            || unbalanced('(', b')')
            || unbalanced('[', b']')
            || unbalanced('{', b'}')
        {
            end -= 1;
        } else {
            break;
        }
    }
    let t = &s[..end];
    let host = t.split_once("://").map_or(t, |(_, rest)| rest);
    if host.len() > 4 && host.contains('.') {
        out.push(Candidate {
            kind: K::Url,
            span: span.start..span.start + end,
            validated: false,
            score: None,
        });
    }
}

/// IPv4 via `Ipv4Addr::from_str` (rejects leading zeros and octets over 255).
pub fn ipv4(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    if text[span.clone()].parse::<Ipv4Addr>().is_ok() {
        out.push(Candidate {
            kind: K::Ip,
            span,
            validated: true,
            score: None,
        });
    }
}

/// IPv6 via `Ipv6Addr::from_str`; at least three non-empty groups so `a::b` in code is no IP.
pub fn ipv6(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    let before = span.start.checked_sub(1).and_then(|i| bytes.get(i));
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.')
        || bytes.get(span.end).is_some_and(u8::is_ascii_alphanumeric)
    {
        return;
    }
    let s = text[span.clone()].trim_end_matches('.');
    let s = if s.ends_with(':') && !s.ends_with("::") {
        &s[..s.len() - 1]
    } else {
        s
    };
    let groups = s.split(':').filter(|g| !g.is_empty()).count();
    if s.len() <= 45 && groups >= 3 && s.parse::<Ipv6Addr>().is_ok() {
        out.push(Candidate {
            kind: K::Ip,
            span: span.start..span.start + s.len(),
            validated: true,
            score: None,
        });
    }
}

/// MAC address (structure only; the regex is the check).
pub fn mac(span: Range<usize>, out: &mut Vec<Candidate>) {
    out.push(Candidate {
        kind: K::Mac,
        span,
        validated: false,
        score: None,
    });
}

/// UUID; `validated` when version (1-8) and RFC 9562 variant bits are set.
pub fn uuid(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let b = text.as_bytes();
    let version = b.get(span.start + 14).copied().unwrap_or(0);
    let variant = b.get(span.start + 19).map_or(0, u8::to_ascii_lowercase);
    let validated =
        (b'1'..=b'8').contains(&version) && matches!(variant, b'8' | b'9' | b'a' | b'b');
    out.push(Candidate {
        kind: K::Uuid,
        span,
        validated,
        score: None,
    });
}

/// Crypto wallet addresses (see [`ck::btc_base58_valid`], [`ck::btc_bech32_valid`], EIP-55).
pub fn crypto(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = text[span.clone()].as_bytes();
    let (validated, score) = if let Some(hex) = s.strip_prefix(b"0x") {
        let lower = hex.iter().all(|b| !b.is_ascii_uppercase());
        let upper = hex.iter().all(|b| !b.is_ascii_lowercase());
        if lower || upper {
            // No checksum is possible in a single-case address: report it, unvalidated.
            (false, Some(0.6))
        } else if ck::eip55_valid(hex) {
            (true, None)
        } else {
            return;
        }
    } else if s.len() > 3 && s[..3].eq_ignore_ascii_case(b"bc1") {
        if !ck::btc_bech32_valid(s) {
            return;
        }
        (true, None)
    } else if ck::btc_base58_valid(s) {
        (true, None)
    } else {
        return;
    };
    out.push(Candidate {
        kind: K::Crypto,
        span,
        validated,
        score,
    });
}

/// IBAN: reads exactly the registered length for the country (spaces skipped), so a following
/// upper-case word is not swallowed.
pub fn iban(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let bytes = s.as_bytes();
    let Some(len) = ck::iban_length(&bytes[..2]) else {
        return;
    };
    let mut value = Vec::with_capacity(len);
    let mut end = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if value.len() == len {
            break;
        }
        if b != b' ' {
            value.push(b);
        }
        end = i + 1;
    }
    let next = bytes.get(end);
    if value.len() == len && !next.is_some_and(u8::is_ascii_alphanumeric) && ck::iban_valid(&value)
    {
        out.push(Candidate {
            kind: K::Iban,
            span: span.start..span.start + end,
            validated: true,
            score: None,
        });
    }
}

/// ES NIF/NIE, IT fiscal code, SG NRIC, IN PAN, UK NINO.
pub fn alnum_id(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let Some(v) = compact(&text[span.clone()], 16) else {
        return;
    };
    let mut push = |kind, validated| {
        out.push(Candidate {
            kind,
            span: span.clone(),
            validated,
            score: None,
        });
    };
    match v.len() {
        9 if ck::nif_valid(&v) => push(K::EsNif, true),
        9 if ck::nie_valid(&v) => push(K::EsNie, true),
        9 if ck::sg_nric_valid(&v) => push(K::SgNric, true),
        9 if ck::uk_nino_valid(&v) => push(K::UkNino, false),
        10 if ck::in_pan_valid(&v) => push(K::InPan, false),
        16 if ck::it_fiscal_valid(&v) => push(K::ItFiscalCode, true),
        _ => {}
    }
}

/// Letter-prefixed US document numbers: passport (1 letter + 8 digits) and driver's licence;
/// both context-only.
pub fn us_letter_digits(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let letters = s.bytes().take_while(u8::is_ascii_uppercase).count();
    if letters == 1 && s.len() == 9 {
        out.push(Candidate {
            kind: K::UsPassport,
            span: span.clone(),
            validated: false,
            score: None,
        });
    }
    out.push(Candidate {
        kind: K::UsDriverLicense,
        span,
        validated: false,
        score: None,
    });
}

/// A date whose numeric parts are plausible (month or day ≤ 12/31); a birth date only with
/// context, which the caller enforces.
pub fn date(text: &str, span: Range<usize>, out: &mut Vec<Candidate>) {
    let s = &text[span.clone()];
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    let ok = match nums.as_slice() {
        [y, m, d] if *y > 999 => (1..=12).contains(m) && (1..=31).contains(d),
        [a, b, _] => (1..=31).contains(a) && (1..=31).contains(b) && (*a <= 12 || *b <= 12),
        [d, _] => (1..=31).contains(d),
        _ => false,
    };
    if ok {
        out.push(Candidate {
            kind: K::DateOfBirth,
            span,
            validated: false,
            score: None,
        });
    }
}
