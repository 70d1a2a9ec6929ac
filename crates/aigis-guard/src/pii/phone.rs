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
