//! Where each candidate pattern is searched: only the parts of a text where a match can lie.
//!
//! Most patterns match only a few kinds of bytes (hex digits, upper-case letters) and are long,
//! always hold a `:` or a digit, or start just before a run of digits. Searching them only in
//! the runs of their bytes, just before the ends of runs of digits, or anchored before runs of
//! digits skips prose a run at
//! a time, and finds exactly the matches of a whole-text `find_iter`: every match lies inside
//! one such region (or starts at one such place, tried in order), no match crosses a region's
//! edge (so the whole-text search is between matches there), and a bounded search
//! ([`Input::range`]) sees the bytes around the region for `\b`. Two necessary conditions skip
//! searches that cannot match (each a few hundred instructions of regex set-up): an anchored
//! start is tried only on a byte a match can begin with, and a region is searched only when it
//! holds the needle as often as every match does (IPv6: two colons; prose has single ones).
//! The alphabets, first bytes, needle counts and lengths are read from the patterns; what a [`Want`] claims beyond that (a match holds a `:` or a digit,
//! starts at a given offset before its first digit) is checked by the tests against whole-text
//! searches.

use std::ops::Range;

use regex_automata::dfa::{Automaton as _, StartKind, dense};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Where one pattern is searched.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The whole text.
    Whole,
    /// The whole text, when the test holds (it holds on every text with a match).
    WholeIf(TextCheck),
    /// Runs of bytes of the pattern's alphabet at least `min` bytes long.
    Runs {
        alphabet: Box<[bool; 256]>,
        min: usize,
    },
    /// The runs of bytes of the pattern's alphabet that hold `needle` at least `count` times
    /// (every match holds it that often).
    Around {
        alphabet: Box<[bool; 256]>,
        needle: u8,
        count: usize,
    },
    /// Within `reach` bytes before the end of a run of ASCII digits (every match ends where
    /// such a run ends and is at most `reach` bytes long).
    EndingAtDigits { reach: usize },
    /// Tried anchored at the places of [`Anchors`], before runs of ASCII digits.
    BeforeDigits(Box<Anchors>),
}

/// The places a [`Scope::BeforeDigits`] pattern is tried, and how.
#[derive(Debug, Clone)]
pub struct Anchors {
    /// Every match starts this many bytes before the start of a run of ASCII digits...
    offsets: &'static [usize],
    /// ...with one of these bytes.
    first: [bool; 256],
    /// The pattern as a full DFA for anchored searches (`None` when it could not be built):
    /// the same leftmost-first match end as the meta regex, without its per-search set-up
    /// (about 300 instructions, paid at every digit run).
    dfa: Option<dense::DFA<Vec<u32>>>,
    /// A test every match start passes (`bytes`, `at`), made before the anchored try: for a
    /// pattern whose DFA is too large, it spares most tries the meta regex's set-up.
    check: Option<StartCheck>,
}

/// A necessary condition for a match to start at `at` of `bytes` (see [`Anchors::check`]).
pub type StartCheck = fn(&[u8], usize) -> bool;

/// A necessary condition for a text to hold a match (see [`Scope::WholeIf`]).
pub type TextCheck = fn(&[u8]) -> bool;

/// Largest full DFA built for an anchored pattern; a bigger one falls back to the meta regex.
const MAX_ANCHORED_DFA: usize = 1 << 20;

/// How a pattern's scope is chosen (written next to the pattern in `recognise.rs`).
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Search the whole text.
    Whole,
    /// Search the whole text when the test holds (it must hold on every text with a match).
    WholeIf(TextCheck),
    /// Runs of the pattern's bytes (it must not match empty).
    Runs,
    /// Runs of the pattern's bytes around every occurrence of this byte, which every match
    /// holds.
    Around(u8),
    /// Ending at digits: every match ends where a run of ASCII digits ends (its last byte is a
    /// digit, and `\b` follows) and its length is bounded.
    EndingAtDigits,
    /// Anchored at these offsets before runs of digits: every match starts there.
    BeforeDigits(&'static [usize]),
    /// As [`Want::BeforeDigits`], tried only where the check holds (it holds at every match
    /// start).
    BeforeDigitsIf(&'static [usize], StartCheck),
}

impl Scope {
    /// The scope `want` asks for, with the alphabet and lengths read from the pattern itself;
    /// `Whole` when the pattern does not allow it.
    pub fn new(pattern: &str, want: Want) -> Self {
        let Ok(hir) = regex_syntax::parse(pattern) else {
            return Self::Whole;
        };
        let props = hir.properties();
        let min = props.minimum_len().unwrap_or(0);
        match want {
            Want::WholeIf(check) => Self::WholeIf(check),
            Want::Runs if min > 0 => Self::Runs {
                alphabet: alphabet(&hir),
                min,
            },
            Want::Around(needle) => Self::Around {
                alphabet: alphabet(&hir),
                needle,
                count: occurrences(&hir, needle),
            },
            Want::EndingAtDigits => props
                .maximum_len()
                .map_or(Self::Whole, |reach| Self::EndingAtDigits { reach }),
            Want::BeforeDigits(offsets) | Want::BeforeDigitsIf(offsets, _) if min > 0 => {
                let dfa = dense::Builder::new()
                    .configure(
                        dense::Config::new()
                            .match_kind(MatchKind::LeftmostFirst)
                            .start_kind(StartKind::Anchored)
                            .dfa_size_limit(Some(MAX_ANCHORED_DFA)),
                    )
                    .build(pattern)
                    .ok();
                let check = match want {
                    Want::BeforeDigitsIf(_, check) => Some(check),
                    _ => None,
                };
                Self::BeforeDigits(Box::new(Anchors {
                    offsets,
                    first: *first_bytes(&hir).0,
                    dfa,
                    check,
                }))
            }
            Want::Whole | Want::Runs | Want::BeforeDigits(_) | Want::BeforeDigitsIf(..) => {
                Self::Whole
            }
        }
    }

    /// Calls `f` with every match of `re` (compiled from the scope's pattern) in `text`, as
    /// `re.find_iter(text)` would, in order. Out of line: inlined into `Pii::scan` (as unrelated
    /// changes elsewhere in the crate made the compiler do), its loops cost about 0.7
    /// instructions per document byte more.
    #[inline(never)]
    pub fn find_iter(&self, re: &Regex, text: &Text<'_>, mut f: impl FnMut(Range<usize>)) {
        let bytes = text.text.as_bytes();
        let mut search = |region: Range<usize>| {
            for m in re.find_iter(Input::new(text.text).range(region)) {
                f(m.range());
            }
        };
        if let Self::BeforeDigits(anchors) = self {
            before_digits(re, text, anchors, f);
            return;
        }
        match self {
            Self::Whole => search(0..bytes.len()),
            Self::WholeIf(check) => {
                if check(bytes) {
                    search(0..bytes.len());
                }
            }
            Self::Runs { alphabet, min } => {
                crate::runs(bytes, *min, |b| alphabet[usize::from(b)], search);
            }
            Self::Around {
                alphabet,
                needle,
                count,
            } => {
                let mut at = 0;
                while let Some(i) = memchr::memchr(*needle, &bytes[at..]) {
                    let hit = at + i;
                    let start = bytes[..hit]
                        .iter()
                        .rposition(|&b| !alphabet[usize::from(b)])
                        .map_or(0, |i| i + 1);
                    let end = bytes[hit..]
                        .iter()
                        .position(|&b| !alphabet[usize::from(b)])
                        .map_or(bytes.len(), |i| hit + i);
                    // A region with too few needles holds no match: not searched.
                    if *count <= 1
                        || memchr::memchr_iter(*needle, &bytes[hit..end])
                            .nth(count - 1)
                            .is_some()
                    {
                        search(start..end);
                    }
                    at = end.max(hit + 1);
                }
            }
            // Searched above.
            Self::BeforeDigits(_) => {}
            Self::EndingAtDigits { reach } => {
                let mut region: Option<Range<usize>> = None;
                for digits in text.digit_runs() {
                    let near = digits.end.saturating_sub(*reach)..digits.end;
                    match &mut region {
                        Some(r) if near.start <= r.end => r.end = near.end,
                        _ => {
                            if let Some(r) = region.replace(near) {
                                search(boundaries(text.text, r));
                            }
                        }
                    }
                }
                if let Some(r) = region {
                    search(boundaries(text.text, r));
                }
            }
        }
    }
}

/// A text being scanned, with what its scopes share (found on first use).
pub struct Text<'a> {
    pub text: &'a str,
    digit_runs: std::cell::OnceCell<Vec<Range<usize>>>,
}

impl<'a> Text<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            digit_runs: std::cell::OnceCell::new(),
        }
    }

    /// The maximal runs of ASCII digits, in order: a run's start found sixteen bytes at a time
    /// (see [`next_digit`]), its bytes one by one.
    fn digit_runs(&self) -> &[Range<usize>] {
        self.digit_runs.get_or_init(|| {
            let bytes = self.text.as_bytes();
            let mut runs: Vec<Range<usize>> = Vec::new();
            // Invariant: `at` is 0 or follows a byte that is not a digit.
            let mut at = 0;
            while let Some(start) = next_digit(bytes, at) {
                let end = bytes[start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(bytes.len(), |i| start + i);
                runs.push(start..end);
                at = end;
            }
            runs
        })
    }
}

/// The first ASCII digit of `bytes` at or after `at`: sixteen bytes a turn, their two words'
/// [`digit_bits`] ORed for one test, and the digit's place read from the lowest bit set.
fn next_digit(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some((block, _)) = bytes.get(at..)?.split_first_chunk::<16>() {
        let (low, high) = block.split_at(8);
        let low = digit_bits(u64::from_le_bytes(low.try_into().ok()?));
        let high = digit_bits(u64::from_le_bytes(high.try_into().ok()?));
        if low | high != 0 {
            let bit = if low == 0 {
                64 + high.trailing_zeros()
            } else {
                low.trailing_zeros()
            };
            return Some(at + bit as usize / 8);
        }
        at += 16;
    }
    let rest = bytes.get(at..)?;
    rest.iter().position(u8::is_ascii_digit).map(|i| at + i)
}

/// The top bit of every byte of `x` (little-endian) that is an ASCII digit, and possibly of
/// bytes above the lowest such byte, never below it: a byte of `x ^ 0x30…` below 10 (the
/// classic "has a byte less than n" test, exact for n up to 128; a false bit needs a borrow
/// from a digit below it). Nonzero exactly when `x` holds a digit, and its lowest bit set is
/// in the first digit's byte.
fn digit_bits(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let y = x ^ (ONES * 0x30);
    y.wrapping_sub(ONES * 10) & !y & (ONES << 7)
}

/// [`Scope::BeforeDigits`]: the places a match can start, tried anchored in order; the first
/// that matches at or after the end of the previous match is the next match of a whole-text
/// `find_iter` (no match is empty).
fn before_digits(re: &Regex, text: &Text<'_>, anchors: &Anchors, mut f: impl FnMut(Range<usize>)) {
    let bytes = text.text.as_bytes();
    let mut starts: Vec<usize> = text
        .digit_runs()
        .iter()
        .flat_map(|r| {
            anchors
                .offsets
                .iter()
                .filter_map(|o| r.start.checked_sub(*o))
        })
        .filter(|&at| anchors.first[usize::from(bytes[at])])
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let mut from = 0;
    for at in starts {
        if at < from
            || !text.text.is_char_boundary(at)
            || anchors.check.is_some_and(|check| !check(bytes, at))
        {
            continue;
        }
        let input = Input::new(text.text).range(at..).anchored(Anchored::Yes);
        let found = match anchors.dfa.as_ref().map(|dfa| dfa.try_search_fwd(&input)) {
            Some(Ok(end)) => end.map(|end| at..end.offset()),
            // No DFA, or it gave up: the meta regex decides.
            _ => re.search(&input).map(|m| m.range()),
        };
        if let Some(m) = found {
            from = m.end;
            f(m);
        }
    }
}

/// `range` widened to character boundaries.
fn boundaries(text: &str, range: Range<usize>) -> Range<usize> {
    let mut start = range.start;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = range.end;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The bytes a match of `hir` can start with, and whether it can be empty (a superset: look-
/// arounds are skipped, and a non-ASCII character counts every byte from 0x80 up).
fn first_bytes(hir: &Hir) -> (Box<[bool; 256]>, bool) {
    let mut set = Box::new([false; 256]);
    let nullable = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => match lit.0.first() {
            Some(&b) => {
                set[usize::from(b)] = true;
                false
            }
            None => true,
        },
        HirKind::Class(_) => {
            set = alphabet(hir);
            false
        }
        HirKind::Repetition(rep) => {
            let (sub, nullable) = first_bytes(&rep.sub);
            set = sub;
            nullable || rep.min == 0
        }
        HirKind::Capture(cap) => {
            let (sub, nullable) = first_bytes(&cap.sub);
            set = sub;
            nullable
        }
        HirKind::Concat(subs) => {
            let mut nullable = true;
            for sub in subs {
                let (bytes, empty) = first_bytes(sub);
                union(&mut set, &bytes);
                if !empty {
                    nullable = false;
                    break;
                }
            }
            nullable
        }
        HirKind::Alternation(subs) => {
            let mut nullable = false;
            for sub in subs {
                let (bytes, empty) = first_bytes(sub);
                union(&mut set, &bytes);
                nullable |= empty;
            }
            nullable
        }
    };
    (set, nullable)
}

fn union(set: &mut [bool; 256], other: &[bool; 256]) {
    for (a, b) in set.iter_mut().zip(other) {
        *a |= b;
    }
}

/// The fewest times `needle` occurs in a match of `hir` (an ASCII byte).
fn occurrences(hir: &Hir, needle: u8) -> usize {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 0,
        HirKind::Literal(lit) => memchr::memchr_iter(needle, &lit.0).count(),
        HirKind::Class(Class::Unicode(class)) => {
            let only = class.ranges().len() == 1
                && class.ranges()[0].start() == char::from(needle)
                && class.ranges()[0].end() == char::from(needle);
            usize::from(only)
        }
        HirKind::Class(Class::Bytes(class)) => {
            let only = class.ranges().len() == 1
                && class.ranges()[0].start() == needle
                && class.ranges()[0].end() == needle;
            usize::from(only)
        }
        HirKind::Repetition(rep) => usize::try_from(rep.min)
            .map_or(0, |min| min.saturating_mul(occurrences(&rep.sub, needle))),
        HirKind::Capture(cap) => occurrences(&cap.sub, needle),
        HirKind::Concat(subs) => subs.iter().map(|s| occurrences(s, needle)).sum(),
        HirKind::Alternation(subs) => subs
            .iter()
            .map(|s| occurrences(s, needle))
            .min()
            .unwrap_or(0),
    }
}

/// Every byte a match of `hir` can hold (all bytes from 0x80 up when it can hold a non-ASCII
/// character).
fn alphabet(hir: &Hir) -> Box<[bool; 256]> {
    fn walk(hir: &Hir, set: &mut [bool; 256]) {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(lit) => {
                for &b in &lit.0 {
                    set[usize::from(b)] = true;
                }
            }
            HirKind::Class(Class::Unicode(class)) => {
                for r in class.iter() {
                    let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                    for b in lo..=hi.min(0x7F) {
                        set[b as usize] = true;
                    }
                    if hi >= 0x80 {
                        set[0x80..].fill(true);
                    }
                }
            }
            HirKind::Class(Class::Bytes(class)) => {
                for r in class.iter() {
                    for b in r.start()..=r.end() {
                        set[usize::from(b)] = true;
                    }
                }
            }
            HirKind::Repetition(rep) => walk(&rep.sub, set),
            HirKind::Capture(cap) => walk(&cap.sub, set),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => {
                for sub in subs {
                    walk(sub, set);
                }
            }
        }
    }
    let mut set = Box::new([false; 256]);
    walk(hir, &mut set);
    set
}

#[cfg(test)]
mod tests {
    use super::super::generate::{self, Rng};
    use super::super::recognise::{PATTERNS, expand};
    use super::*;
    use proptest::prelude::*;

    /// Pieces that make the patterns match, almost match, and meet at odd places.
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "\t",
        "\n",
        ".",
        "-",
        ":",
        "::",
        "+",
        "(",
        ")",
        "/",
        ",",
        "a",
        "Ab",
        "IBAN",
        "x",
        "é",
        "1",
        "12",
        "123",
        "2024",
        "555",
        "0134",
        "+1 ",
        "(415) ",
        "415-555-0134",
        "192.168.0.1",
        "fe80::1",
        "2001:db8::8a2e:370:7334",
        "00:1a:2B:3c:4d:5e",
        "0a1b.2c3d.4e5f",
        "123e4567-e89b-12d3-a456-426614174000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "X1234567",
        "AB123456C",
        "ABCDE1234F",
        "12/31/1999",
        "1999-12-31",
        "March 3rd, 2001",
        "3 of march 2001",
        "Mr Smith",
        "my name is Ana",
        "12 Main Street",
        "7b\tÉlysée  Rd.",
        "123456 O'Neil-Smith Hwy",
        "1234567 Elm St",
        "9 St ",
        " Ave ",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "BC1",
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x",
        "bob@example.com",
        "https://e.example/a",
        "WwW.e.example",
        "www",
        "FTP://x.y",
        "Www.",
        "4111 1111 1111 1111",
        "078-05-1120",
        "07805 1120",
    ];

    fn check(text: &str) -> Result<(), TestCaseError> {
        let scanned = Text::new(text);
        for (shape, pattern) in PATTERNS {
            let src = expand(pattern);
            let re = Regex::new(&src).unwrap();
            let scope = Scope::new(&src, super::super::want(*shape));
            let mut got = Vec::new();
            scope.find_iter(&re, &scanned, |m| got.push(m));
            let want: Vec<Range<usize>> = re.find_iter(text).map(|m| m.range()).collect();
            prop_assert_eq!(got, want, "{:?} on {:?}", shape, text);
        }
        Ok(())
    }

    #[test]
    fn first_bytes_and_needle_counts_come_from_the_patterns() {
        let hir = |p: &str| regex_syntax::parse(&expand(p)).unwrap();
        let (first, nullable) = first_bytes(&hir(r"(?:\+|\(|{B})[0-9][0-9 ().-]{5,22}[0-9]{B}"));
        let bytes: Vec<u8> = (0..=255u8).filter(|&b| first[usize::from(b)]).collect();
        assert_eq!(bytes, b"(+0123456789");
        assert!(!nullable);
        assert!(first_bytes(&hir("a?b*")).1);
        assert_eq!(
            occurrences(
                &hir("(?i)(?:[0-9a-f]{1,4}|:)?:[0-9a-f:]*:[0-9a-f.:]*"),
                b':'
            ),
            2
        );
        assert_eq!(occurrences(&hir("(?::a|b:){3}:?"), b':'), 3);
    }

    /// Every anchored pattern gets its full DFA or a start check: without either, each try
    /// pays the meta regex's set-up, which costs more than a whole-text search for the patterns
    /// tried at every run.
    #[test]
    fn anchored_patterns_have_their_dfa_or_a_check() {
        for (shape, pattern) in PATTERNS {
            let src = expand(pattern);
            if let Scope::BeforeDigits(anchors) = Scope::new(&src, super::super::want(*shape)) {
                assert!(
                    anchors.dfa.is_some() || anchors.check.is_some(),
                    "{shape:?}"
                );
            }
        }
    }

    /// `may_hold_url` compares `www` ignoring ASCII case only: `w` matches no other character
    /// under the URL pattern's `(?i)`.
    #[test]
    fn w_folds_only_to_its_ascii_cases() {
        let odd = crate::case_fold_twins('w');
        assert!(odd.is_empty(), "{odd:?}");
    }

    proptest! {
        #[test]
        fn digit_bits_find_the_first_digit(
            x in any::<u64>(),
            digit in 0usize..8,
            d in b'0'..=b'9',
        ) {
            // The byte of the lowest bit set, or 8 for none.
            let first = |x: u64| digit_bits(x).trailing_zeros() as usize / 8;
            let want = |x: u64| x.to_le_bytes().iter().position(u8::is_ascii_digit).unwrap_or(8);
            prop_assert_eq!(first(x), want(x));
            let mut bytes = x.to_le_bytes();
            bytes[digit] = d;
            prop_assert_eq!(first(u64::from_le_bytes(bytes)), want(u64::from_le_bytes(bytes)));
            let spread = u64::from_le_bytes(bytes.map(|b| b'/' + b % 12));
            prop_assert_eq!(first(spread), want(spread));
        }

        #[test]
        fn next_digit_is_the_first_digit(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab 0179/:x\n".to_vec()),
                0..70,
            ),
            at in 0usize..70,
        ) {
            let at = at.min(text.len());
            let want = text[at..].iter().position(u8::is_ascii_digit).map(|i| at + i);
            prop_assert_eq!(next_digit(&text, at), want);
        }

        #[test]
        fn scopes_find_what_a_whole_text_search_finds(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..60),
            seed in any::<u64>(),
        ) {
            let mut rng = Rng::new(seed);
            let mut text: String = pieces.concat();
            for kind in ["CREDIT_CARD", "IBAN_CODE", "IT_FISCAL_CODE", "CRYPTO", "IP_ADDRESS", "US_SSN"] {
                if let Some(v) = generate::valid(kind, &mut rng) {
                    text.push(' ');
                    text.push_str(&v);
                }
            }
            text.push_str(&pieces.concat());
            check(&text)?;
        }
    }
}
