//! PII recognisers: finds personal data in text and reports typed, scored [`Detection`]s.
//!
//! # How
//! 1. Each candidate pattern runs `find_iter` only where a match can lie (`scope.rs`): digit
//!    runs, phone numbers, IPv4, IBANs and US document numbers anchored just before each run of
//!    digits; dates just before the ends of digit runs; MAC addresses, UUIDs and the
//!    alphanumeric ids in the runs of the few bytes they match; IPv6 around each `:` (where
//!    two occur); the patterns with a good literal
//!    prefilter (e-mail, URL, names, streets, crypto addresses) in the whole text. It finds
//!    what a whole-text search finds, skipping prose a run at a time.
//! 2. Each match goes to a validator: checksums ([`checksum`]), `std` IP parsing, the
//!    `phonenumber` crate for phone numbers, structural rules for the rest.
//! 3. When a candidate's score depends on context, one Aho-Corasick pass finds every context
//!    word (case-insensitive, whole words) and a candidate looks within
//!    48 bytes either side of its span. The pass only runs near the candidates (restarting
//!    after a byte no context word holds), which finds the same words there as a pass over
//!    the whole text.
//! 4. Overlaps are resolved: validated beats unvalidated, then higher score, then the longer
//!    span; every span is reported once.
//!
//! # Entities and scores
//! | kind | check | score (no context / context) | context |
//! |---|---|---|---|
//! | `CREDIT_CARD` | Luhn + brand prefix/length (Visa, MC, Amex, Discover, JCB, Diners, UnionPay, Maestro); a Luhn-invalid number is never a card | 0.9 / 1.0 | optional |
//! | `CRYPTO` | BTC base58check P2PKH/P2SH, bech32/bech32m segwit; ETH EIP-55 when mixed case (single-case ETH: 0.6, not validated) | 0.95 / 1.0 | optional |
//! | `EMAIL_ADDRESS` | structure | 0.9 / 1.0 | optional |
//! | `IBAN_CODE` | country length table + mod-97 | 0.95 / 1.0 | optional |
//! | `IP_ADDRESS` | `Ipv4Addr`/`Ipv6Addr` parse (IPv6: ≥ 3 groups) | 0.8 / 0.95 | optional |
//! | `MAC_ADDRESS` | structure | 0.7 / 0.95 | optional |
//! | `PHONE_NUMBER` | `phonenumber` parse + its `is_valid` rules, compiled once (`phone.rs`; default region US, `+CC` forms; plain North American forms skip the parser, same verdict) | 0.7 / 0.9 | optional |
//! | `URL` | scheme or `www.`, trailing punctuation trimmed | 0.6 / 0.8 | optional |
//! | `UUID` | structure (validated when version and variant bits are RFC 9562) | 0.5 / 0.7 | optional |
//! | `DATE_OF_BIRTH` | plausible date | – / 0.85 | **required** |
//! | `US_SSN` | SSA area/group/serial rules; bare 9 digits only with context | 0.5 / 0.9 | required for bare digits |
//! | `US_ITIN` | 9XX, group 50-65/70-88/90-92/94-99 | 0.5 / 0.9 | optional |
//! | `US_PASSPORT` | 9 digits or letter + 8 digits | – / 0.6 | **required** |
//! | `US_DRIVER_LICENSE` | 1-2 letters + 4-14 digits, or 7-12 digits | – / 0.6 | **required** |
//! | `US_BANK_NUMBER` | 8-17 digits | – / 0.5 | **required** |
//! | `UK_NHS` | mod 11 | 0.5 / 0.95 | optional |
//! | `UK_NINO` | HMRC prefix rules, suffix A-D | 0.6 / 0.9 | optional |
//! | `ES_NIF`, `ES_NIE` | mod-23 control letter | 0.85 / 1.0 | optional |
//! | `IT_FISCAL_CODE` | check character | 0.9 / 1.0 | optional |
//! | `PL_PESEL` | weighted checksum + encoded month/day | 0.6 / 0.95 | optional |
//! | `DE_TAX_ID` | digit-repetition rule + ISO 7064 MOD 11,10 | 0.5 / 0.95 | optional |
//! | `AU_TFN` | weighted mod 11 | – / 0.9 | **required** |
//! | `IN_PAN` | structure (holder-type letter) | 0.5 / 0.9 | optional |
//! | `SG_NRIC` | check letter (S/T/F/G series) | 0.85 / 1.0 | optional |
//! | `PERSON` | title (Mr, Mrs, Dr, ...) or "my name is"/"name:" + 1-3 capitalised words | 0.6 | cue is part of the pattern |
//! | `STREET_ADDRESS` | number + 1-4 capitalised words + English street suffix | 0.5 | – |
//!
//! A negative context word ("order", "tracking", "invoice", "reference", ...) near a value
//! subtracts 0.3 from its score (0.15 for checksummed values). The exact words per entity are in
//! the entity table (`entity.rs`); most are English with a few Spanish, French, German, Italian
//! and Polish words.
//!
//! # Not covered
//! - Names without a cue (no NER model: "John Smith called" is not found), organisations,
//!   cities, countries, nationalities, ages.
//! - Addresses other than the English "number + name + suffix" form (continental "Street 42",
//!   P.O. boxes, postcodes, cities are not reported; only the street part is).
//! - Lower-case IBANs, IBANs split other than by single spaces; cards split other than by single
//!   spaces/dashes; the Singapore M series; Bitcoin testnet and Litecoin etc.
//! - Dates of birth without a birth word nearby; US passports, licences, bank numbers and
//!   Australian TFNs without context words (their formats match too much else).
//!
//! # Bounds
//! The regex engine is linear-time; the scopes visit each byte a bounded number of times
//! (regions are disjoint, anchored tries end within the pattern's maximum length); validators
//! look at bounded slices (`compact` caps lengths,
//! base58 at 64 characters); at most [`MAX_PHONE_PARSES`] phone candidates per scan go to the
//! `phonenumber` parser; context lookups are binary searches over the sorted word hits.

pub mod checksum;
pub(crate) mod context;
mod entity;
pub mod generate;
mod phone;
mod recognise;
mod scope;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use regex::Regex;

use crate::{Detection, Detector};
use context::{ContextWords, Hits};
pub use entity::EntityInfo;
use entity::{ENTITIES, EntityKind, NEGATIVE_PENALTY};
use recognise::{Candidate, PATTERNS, Shape};
use scope::{Scope, Want};

/// Most phone candidates handed to the `phonenumber` parser in one scan (the parser is the
/// expensive step; adversarial input such as megabytes of "1 1 1 ..." would otherwise cost
/// one parse per 24 bytes).
pub const MAX_PHONE_PARSES: usize = 4096;

/// The PII detector. Compile once with [`Pii::new`], share, and call [`Pii::scan`].
pub struct Pii {
    /// Per pattern: its shape, and its regex for captures (names).
    patterns: Vec<(Shape, Regex)>,
    /// Per pattern: the regex searched in its scope, and the scope.
    searches: Vec<(regex_automata::meta::Regex, Scope)>,
    context: ContextWords,
    region: phonenumber::country::Id,
}

impl Default for Pii {
    fn default() -> Self {
        Self::new()
    }
}

impl Pii {
    /// Compile all recognisers with US as the default phone region.
    pub fn new() -> Self {
        Self::with_phone_region(phonenumber::country::Id::US)
    }

    /// Compile all recognisers; numbers without `+CC` are parsed as numbers of `region`.
    pub fn with_phone_region(region: phonenumber::country::Id) -> Self {
        let sources: Vec<String> = PATTERNS.iter().map(|(_, p)| recognise::expand(p)).collect();
        #[expect(
            clippy::expect_used,
            reason = "the patterns are constants covered by tests"
        )]
        let searches = PATTERNS
            .iter()
            .zip(&sources)
            .map(|((shape, _), src)| {
                let re = regex_automata::meta::Regex::new(src).expect("PII pattern compiles");
                (re, Scope::new(src, want(*shape)))
            })
            .collect();
        #[expect(
            clippy::expect_used,
            reason = "the patterns are constants covered by tests"
        )]
        let patterns = PATTERNS
            .iter()
            .zip(&sources)
            .map(|((shape, _), src)| (*shape, Regex::new(src).expect("PII pattern compiles")))
            .collect();
        warm_up_phonenumber(region);
        Self {
            patterns,
            searches,
            context: ContextWords::new(),
            region,
        }
    }

    /// Every entity type this detector reports.
    pub fn entities() -> &'static [EntityInfo] {
        static INFOS: std::sync::OnceLock<Vec<EntityInfo>> = std::sync::OnceLock::new();
        INFOS.get_or_init(|| ENTITIES.iter().map(|e| e.info).collect())
    }

    /// Scan `text` and append one [`Detection`] per PII value found (`Detector::Pii`, `kind` the
    /// entity name, `span` the byte range of the value). Overlapping candidates are resolved
    /// so no byte is reported twice.
    pub fn scan(&self, text: &str, out: &mut Vec<Detection>) {
        let mut candidates = Vec::new();
        self.candidates(text, &mut candidates);
        if candidates.is_empty() {
            return;
        }
        let hits = self
            .context
            .find(text, candidates.iter().map(|c| c.span.clone()));
        let mut scored: Vec<(Candidate, f32)> = candidates
            .into_iter()
            .filter_map(|c| score(text, &hits, c))
            .collect();
        resolve(&mut scored);
        out.extend(scored.into_iter().map(|(c, score)| Detection {
            detector: Detector::Pii,
            kind: Cow::Borrowed(c.kind.entity().info.name),
            span: c.span,
            score,
            validated: c.validated,
        }));
    }

    fn candidates(&self, text: &str, out: &mut Vec<Candidate>) {
        let mut phones = Vec::new();
        let scanned = scope::Text::new(text);
        for ((shape, re), (search, scope)) in self.patterns.iter().zip(&self.searches) {
            if let Shape::Person = shape {
                for caps in re.captures_iter(text) {
                    if let Some(name) = caps.get(1) {
                        out.push(Candidate {
                            kind: EntityKind::Person,
                            span: name.range(),
                            validated: false,
                            score: None,
                        });
                    }
                }
                continue;
            }
            scope.find_iter(search, &scanned, |span| match shape {
                Shape::Digits => recognise::digits(text, span, out),
                Shape::Phone => phones.push(span),
                Shape::Email => recognise::email(text, span, out),
                Shape::Url => recognise::url(text, span, out),
                Shape::Ipv4 => recognise::ipv4(text, span, out),
                Shape::Ipv6 => recognise::ipv6(text, span, out),
                Shape::Mac => recognise::mac(span, out),
                Shape::Uuid => recognise::uuid(text, span, out),
                Shape::Crypto => recognise::crypto(text, span, out),
                Shape::Iban => recognise::iban(text, span, out),
                Shape::AlnumId => recognise::alnum_id(text, span, out),
                Shape::UsLetterDigits => recognise::us_letter_digits(text, span, out),
                Shape::Date => recognise::date(text, span, out),
                Shape::Street => out.push(Candidate {
                    kind: EntityKind::StreetAddress,
                    span,
                    validated: false,
                    score: None,
                }),
                Shape::Person => {}
            });
        }
        // Phone parsing is the expensive step: skip spans a checksummed value already owns.
        let mut owned: Vec<(usize, usize)> = out
            .iter()
            .filter(|c| c.validated)
            .map(|c| (c.span.start, c.span.end))
            .collect();
        owned.sort_unstable();
        for span in phones.into_iter().take(MAX_PHONE_PARSES) {
            let i = owned.partition_point(|&(start, _)| start < span.end);
            let covered = owned[..i]
                .iter()
                .rev()
                .take(4)
                .any(|&(_, end)| end > span.start);
            if !covered {
                recognise::phone(text, span, self.region, out);
            }
        }
    }
}

/// Where a pattern of `shape` is searched (see `scope.rs`; a scope the pattern's lengths do
/// not allow falls back to the whole text).
fn want(shape: Shape) -> Want {
    match shape {
        Shape::Mac | Shape::Uuid | Shape::AlnumId => Want::Runs,
        Shape::Ipv6 => Want::Around(b':'),
        // Each starts at a word boundary before its first digit, which starts a run of digits:
        // at that run (digit runs, IPv4), or one byte before for `+`/`(` (phone), or one or
        // two letters before (US documents, two for IBAN).
        Shape::Digits | Shape::Ipv4 => Want::BeforeDigits(&[0]),
        Shape::Phone => Want::BeforeDigits(&[0, 1]),
        Shape::UsLetterDigits => Want::BeforeDigits(&[1, 2]),
        Shape::Iban => Want::BeforeDigits(&[2]),
        // A street number starts at a word boundary, so a run of digits starts there. Its
        // DFA is too large (Unicode letter classes): tried only where `street_may_start`.
        Shape::Street => Want::BeforeDigitsIf(&[0], street_may_start),
        // `1`, `3` and `0x` start at a word boundary (a digit run starts there); `bc1` and
        // `BC1` hold a run of digits starting at their `1`, after the non-digit `c`.
        Shape::Crypto => Want::BeforeDigits(&[0, 2]),
        // Every date ends with digits followed by `\b`.
        Shape::Date => Want::EndingAtDigits,
        Shape::Url => Want::WholeIf(may_hold_url),
        Shape::Email | Shape::Person => Want::Whole,
    }
}

/// Whether a street address (`recognise::PATTERNS`) can start at the digits at `at`: one to
/// six digits, an optional ASCII letter, spaces or tabs, then an upper-case letter (ASCII, or
/// any non-ASCII character: a superset of `\p{Lu}`).
fn street_may_start(bytes: &[u8], at: usize) -> bool {
    let rest = bytes.get(at..).unwrap_or_default();
    let digits = rest
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 6 {
        return false;
    }
    let mut i = digits;
    if rest.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    let spaces = rest[i..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    spaces > 0
        && rest
            .get(i + spaces)
            .is_some_and(|&b| b.is_ascii_uppercase() || b >= 0x80)
}

/// Whether `bytes` can hold a URL (`recognise::PATTERNS`): every match holds `://`, or `www.`
/// in any case (`w` folds to no other character). Most texts have neither, and `memchr`
/// costs a fraction of the regex's prefilter (its case-insensitive prefixes, about one
/// instruction a byte).
fn may_hold_url(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"://").is_some()
        || memchr::memchr_iter(b'.', bytes)
            .any(|at| at >= 3 && bytes[at - 3..at].eq_ignore_ascii_case(b"www"))
}

/// Compiled regexes the `phonenumber` crate keeps (its default is 100, an LRU cache).
pub const PHONE_REGEX_CACHE: usize = 1024;

/// Loads the `phonenumber` metadata and widens its regex cache, once per process.
///
/// The crate loads its metadata on first use (about 100 ms): done here rather than in the first
/// request that holds a phone number. Validating a number of a country code shared by several
/// regions (+1: the US, Canada and 23 others) tries each region's patterns; with the crate's
/// 100-regex LRU cache that evicted and recompiled regexes on every number (about 100 µs per
/// candidate). 1,024 cached regexes hold every region a scan usually meets (the parser still
/// uses them; validity has its own compiled rules, [`phone`]); the bound keeps memory bounded
/// when input names every country code.
fn warm_up_phonenumber(region: phonenumber::country::Id) {
    static WIDENED: std::sync::Once = std::sync::Once::new();
    WIDENED.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(PHONE_REGEX_CACHE);
        }
    });
    let _ = phonenumber::parse(Some(region), "2015550123");
    // Compile the validity rules of the default region's calling code (for +1, 25 regions:
    // about 30 ms) now, not in the first request that holds a phone number.
    if let Some(meta) = phonenumber::metadata::DATABASE.by_id(region.as_ref()) {
        phone::warm_up(meta.country_code());
    }
}

/// Apply context: drop context-required candidates without it, raise or lower the rest.
fn score(text: &str, hits: &Hits, c: Candidate) -> Option<(Candidate, f32)> {
    let info = &c.kind.entity().info;
    let positive = hits.positive(c.kind, &c.span);
    let required = info.context_required || recognise::bare_ssn(text, &c);
    if required && !positive {
        return None;
    }
    let mut s = if positive {
        info.score_with_context
    } else {
        c.score.unwrap_or(info.score)
    };
    if hits.negative(&c.span) {
        s -= if info.checksummed {
            NEGATIVE_PENALTY / 2.0
        } else {
            NEGATIVE_PENALTY
        };
    }
    Some((c, s.clamp(0.05, 1.0)))
}

/// Keep the best candidate of every overlapping group: validated first, then score, then
/// longer span, then earlier in the entity table. Leaves `v` sorted by span start.
fn resolve(v: &mut Vec<(Candidate, f32)>) {
    v.sort_by(|(a, sa), (b, sb)| {
        b.validated
            .cmp(&a.validated)
            .then(sb.total_cmp(sa))
            .then((b.span.end - b.span.start).cmp(&(a.span.end - a.span.start)))
            .then(a.kind.cmp(&b.kind))
            .then(a.span.start.cmp(&b.span.start))
    });
    let mut kept: Vec<(Candidate, f32)> = Vec::with_capacity(v.len());
    // Accepted spans by start; they never overlap, so only the neighbours need checking.
    let mut taken: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (c, s) in v.drain(..) {
        let overlaps_prev = taken
            .range(..=c.span.start)
            .next_back()
            .is_some_and(|(_, &end)| end > c.span.start);
        let overlaps_next = taken
            .range(c.span.start..)
            .next()
            .is_some_and(|(&start, _)| start < c.span.end);
        if !overlaps_prev && !overlaps_next {
            taken.insert(c.span.start, c.span.end);
            kept.push((c, s));
        }
    }
    kept.sort_by_key(|(c, _)| c.span.start);
    *v = kept;
}
