//! `phonenumber::is_valid` with the library's own metadata patterns compiled once per calling
//! code, into one small DFA per region. The library looks each pattern up in a shared LRU
//! cache keyed by its source text (a hash of hundreds of bytes and a lock per pattern, up to
//! eleven patterns per region and, for a number that fails in the first of NANP's 25 regions,
//! every other region too), which made validation the largest part of phone detection on long
//! texts (12.5 instructions per document byte; 0.5 with the DFAs, memory unchanged).
//!
//! The verdict is the library's, rule for rule (`validator::is_valid_with`): the number's
//! calling code names its regions; with one region (or a non-geographic `001` entity) that
//! region decides; with several, the first region whose leading-digits pattern matches at the
//! start decides, and a region without one decides when the number has a type there. A number
//! has a type in a region when the general descriptor and at least one of the ten type
//! descriptors match: each descriptor requires one of its possible lengths (when it lists any)
//! and its pattern to match at the start of the national number. Tests compare both verdicts
//! on every example number in the metadata, random numbers in every calling code and random
//! NANP numbers.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use phonenumber::PhoneNumber;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex_automata::dfa::{Automaton, dense};
use regex_automata::{Anchored, Input, MatchKind};

/// Whether `number` is valid, as `phonenumber::is_valid` decides.
pub fn is_valid(number: &PhoneNumber) -> bool {
    let code = number.country().code();
    let national = number.national().to_string();
    if !national.bytes().all(|b| b.is_ascii_digit()) {
        // Never the case (a national number prints as digits); the compiled rules read `\d`
        // as ASCII digits, so anything else is the library's to judge.
        return phonenumber::is_valid(number);
    }
    match rules(code) {
        Some(rules) => rules.is_valid(&national),
        // An unknown calling code, or rules that could not be compiled (none today: the tests
        // cover every code): the library decides.
        None => phonenumber::is_valid(number),
    }
}

/// The verdict of `phonenumber::parse` (default region US) and [`is_valid`] on a candidate in
/// one of the plain North American forms, without the parser; `None` for any other form (the
/// parser decides). The forms: ten digits whose area code and exchange start with 2-9, alone,
/// after `1`, or after `+1`, separated only by spaces, `-`, `.`, `(` and `)`. For those the
/// parser finds calling code 1 and the ten digits as the national number whatever the
/// separators (a test compares both on generated forms); it costs about 30,000 instructions a
/// candidate, most of them looking its patterns up in a shared cache (a `+1` number tries
/// each of the 25 regions' patterns).
pub fn plain_nanp(candidate: &str) -> Option<bool> {
    let (plus, rest) = match candidate.strip_prefix("+1") {
        // Digits right after `+1` are read as one longer calling code (`+1401-...` is not
        // `+1 401-...`): left to the parser.
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => return None,
        Some(rest) => (true, rest),
        None => (false, candidate),
    };
    if !rest
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
    {
        return None;
    }
    let digits: Vec<u8> = rest.bytes().filter(u8::is_ascii_digit).collect();
    let national = match (plus, digits.len()) {
        (_, 10) => &digits[..],
        (false, 11) if digits[0] == b'1' => &digits[1..],
        _ => return None,
    };
    if national[0] < b'2' || national[3] < b'2' {
        return None;
    }
    let national = std::str::from_utf8(national).ok()?;
    Some(rules(1)?.is_valid(national))
}

/// Compiles the rules of calling code `code` now (a gateway's default region at start-up).
pub fn warm_up(code: u16) {
    let _ = rules(code);
}

/// The compiled rules of a calling code, built on its first use.
fn rules(code: u16) -> Option<Arc<Code>> {
    static CODES: LazyLock<RwLock<HashMap<u16, Option<Arc<Code>>>>> =
        LazyLock::new(RwLock::default);
    if let Some(found) = CODES.read().ok()?.get(&code) {
        return found.clone();
    }
    let built = Code::build(code).map(Arc::new);
    CODES.write().ok()?.insert(code, built.clone());
    built
}

/// A calling code's regions, in the library's order. One region (or a non-geographic entity)
/// decides alone; of several, the first that claims the number decides.
struct Code(Vec<Region>);

impl Code {
    fn build(code: u16) -> Option<Self> {
        let regions = DATABASE.region(&code)?;
        if let [only] = regions[..] {
            let meta = if only == "001" {
                DATABASE.by_code(&code)?.into_iter().next()?
            } else {
                DATABASE.by_id(only)?
            };
            return Some(Self(vec![Region::build(meta)?]));
        }
        let shared = regions
            .into_iter()
            .map(|id| Region::build(DATABASE.by_id(id)?))
            .collect::<Option<_>>()?;
        Some(Self(shared))
    }

    fn is_valid(&self, national: &str) -> bool {
        if let [only] = &self.0[..] {
            return only.check(national).has_type;
        }
        for region in &self.0 {
            let verdict = region.check(national);
            match verdict.leading {
                Some(true) => return verdict.has_type,
                None if verdict.has_type => return true,
                _ => {}
            }
        }
        false
    }
}

/// What a region's rules say of a national number.
struct Verdict {
    /// Whether the number has a type there (`number_type` is not `Unknown`).
    has_type: bool,
    /// Whether its leading-digits pattern matches at the start (`None`: it has none).
    leading: Option<bool>,
}

/// A region's descriptors as one anchored DFA over ASCII digits: pattern 0 is the general
/// descriptor, then the type descriptors, then the leading-digits pattern if any.
struct Region {
    dfa: dense::DFA<Vec<u32>>,
    /// Possible lengths per descriptor pattern (empty: any).
    lengths: Vec<Vec<u16>>,
    has_leading: bool,
}

impl Region {
    fn build(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let descriptors: Vec<&Descriptor> = [
            Some(d.general()),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut patterns: Vec<&str> = descriptors
            .iter()
            .map(|d| d.national_number().as_str())
            .collect();
        let leading = meta.leading_digits();
        if let Some(l) = leading {
            patterns.push(l.as_str());
        }
        // As the library compiles its patterns (whitespace is layout), except that `\d` and
        // friends are ASCII: national numbers are ASCII digits. Every match is wanted, from
        // the start only (the library's `find(..).start() == 0`: a leftmost match starts at
        // 0 exactly when some match does).
        let dfa = dense::Builder::new()
            .configure(
                dense::DFA::config()
                    .match_kind(MatchKind::All)
                    .start_kind(regex_automata::dfa::StartKind::Anchored),
            )
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .ignore_whitespace(true)
                    .unicode(false)
                    .utf8(false),
            )
            .build_many(&patterns)
            .ok()?;
        Some(Self {
            dfa,
            lengths: descriptors
                .iter()
                .map(|d| d.possible_length().to_vec())
                .collect(),
            has_leading: leading.is_some(),
        })
    }

    fn check(&self, national: &str) -> Verdict {
        // Which patterns match at the start, as a bit set (a region has at most 12).
        let mut matched = 0u32;
        let mut record = |state| {
            for i in 0..self.dfa.match_len(state) {
                matched |= 1 << self.dfa.match_pattern(state, i).as_usize();
            }
        };
        let input = Input::new(national).anchored(Anchored::Yes);
        if let Ok(mut state) = self.dfa.start_state_forward(&input) {
            for &b in national.as_bytes() {
                state = self.dfa.next_state(state, b);
                if self.dfa.is_match_state(state) {
                    record(state);
                } else if self.dfa.is_dead_state(state) {
                    break;
                }
            }
            if !self.dfa.is_dead_state(state) {
                state = self.dfa.next_eoi_state(state);
                if self.dfa.is_match_state(state) {
                    record(state);
                }
            }
        }
        let fits = |i: usize| {
            matched & (1 << i) != 0
                && (self.lengths[i].is_empty()
                    || u16::try_from(national.len()).is_ok_and(|n| self.lengths[i].contains(&n)))
        };
        Verdict {
            has_type: fits(0) && (1..self.lengths.len()).any(fits),
            leading: self
                .has_leading
                .then(|| matched & (1 << self.lengths.len()) != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every calling code the metadata knows.
    fn codes() -> Vec<u16> {
        let mut codes: Vec<u16> = DATABASE
            .iter()
            .map(Metadata::country_code)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        codes.sort_unstable();
        codes
    }

    /// The parser's verdict on a candidate, as `recognise::phone` asks for it.
    fn parsed_verdict(text: &str) -> bool {
        let region = text
            .strip_prefix('+')
            .map_or(Some(phonenumber::country::Id::US), |_| None);
        phonenumber::parse(region, text).is_ok_and(|p| is_valid(&p))
    }

    #[test]
    fn plain_nanp_forms_get_the_parsers_verdict() {
        for text in [
            "415-555-0132",
            "(415) 555-0132",
            "+1 (415) 555-0132",
            "+1 415.555.0132",
            "1 415 555 0132",
            "1-800-555-0199",
            "+1 (882) 555-9618",
            "294-555-5593",
            "(201)555(0123)",
            "2 0 1 5 5 5 0 1 2 3",
        ] {
            assert_eq!(plain_nanp(text), Some(parsed_verdict(text)), "{text}");
        }
        for other in [
            "+44 20 7946 2361",
            "+1 015 555 0132",
            "415 155 0132",
            "0134",
        ] {
            assert_eq!(plain_nanp(other), None, "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_nanp_agrees_with_the_parser(
            prefix in proptest::sample::select(
                vec!["", "1", "+1", "1 ", "+1 ", "+1-", "1-", "+1(", "+1.", "1(", "(", "+1 ("],
            ),
            digits in proptest::collection::vec(0u8..10, 10),
            seps in proptest::collection::vec(
                proptest::sample::select(vec![
                    "", "", "", " ", "-", ".", "(", ")", ") ", " (", "  ", ")-", "()", ".(", "-(",
                    " -", "- ", ". ", "((", "))", ").", " )", "( ",
                ]),
                10,
            ),
            low_digits in proptest::bool::ANY,
        ) {
            let mut text = String::from(prefix);
            for (i, d) in digits.iter().enumerate() {
                let d = if low_digits || (i != 0 && i != 3) { *d } else { 2 + d % 8 };
                text.push(char::from(b'0' + d));
                if i < 9 {
                    text.push_str(seps[i]);
                }
            }
            if let Some(verdict) = plain_nanp(&text) {
                proptest::prop_assert_eq!(verdict, parsed_verdict(&text), "{}", text);
            }
        }
    }

    fn same_verdict(text: &str) {
        if let Ok(p) = phonenumber::parse(None, text) {
            assert_eq!(
                is_valid(&p),
                phonenumber::is_valid(&p),
                "{text} (national {})",
                p.national()
            );
        }
    }

    #[test]
    fn every_example_number_gets_the_librarys_verdict() {
        let mut checked = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            for desc in [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.voip(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(example) = desc.example() {
                    same_verdict(&format!("+{} {example}", meta.country_code()));
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "only {checked} examples");
    }

    #[test]
    fn random_numbers_get_the_librarys_verdict() {
        // A fixed xorshift stream: every calling code, national numbers of 4 to 14 digits,
        // most of them invalid (the case that walks NANP's regions).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let codes = codes();
        assert!(codes.contains(&1) && codes.contains(&44) && codes.len() > 200);
        for &code in &codes {
            for _ in 0..60 {
                let digits = 4 + next() % 11;
                let national: String = (0..digits)
                    .map(|_| char::from(b'0' + u8::try_from(next() % 10).unwrap_or(0)))
                    .collect();
                same_verdict(&format!("+{code} {national}"));
            }
        }
        // The hot path: ten-digit numbers in the default region, most invalid in the US and
        // so tried in every other NANP region.
        for _ in 0..3000 {
            let national: String = (0..10)
                .map(|_| char::from(b'0' + u8::try_from(next() % 10).unwrap_or(0)))
                .collect();
            if let Ok(p) = phonenumber::parse(Some(phonenumber::country::Id::US), &national) {
                assert_eq!(is_valid(&p), phonenumber::is_valid(&p), "{national}");
            }
        }
    }

    #[test]
    fn region_numbers_get_the_librarys_verdict() {
        for text in [
            "(201) 555-0123",
            "202-456-1111",
            "+1 649 946 1234",
            "+1 340 774 1234",
            "+44 20 7946 0958",
            "+39 06 6988 2411",
            "+49 30 901820",
            "+33 1 23 45 67 89",
            "+7 495 123-45-67",
            "+800 1234 5678",
        ] {
            same_verdict(text);
            if let Ok(p) = phonenumber::parse(Some(phonenumber::country::Id::US), text) {
                assert_eq!(is_valid(&p), phonenumber::is_valid(&p), "{text}");
            }
        }
    }
}
