//! `phonenumber::is_valid` with the library's own metadata patterns compiled once per calling
//! code: the library looks each pattern up in a shared LRU cache keyed by its source text (a
//! hash of hundreds of bytes and a lock per pattern, up to ten patterns per region and, for a
//! number that fails in the first of NANP's 25 regions, every other region too), which made
//! validation the largest part of phone detection on long texts.
//!
//! The verdict is the library's, rule for rule (`validator::is_valid_with`): the number's
//! calling code names its regions; with one region (or a non-geographic `001` entity) that
//! region decides; with several, the first region whose leading-digits pattern matches at the
//! start decides, and a region without one decides when the number has a type there. A number
//! has a type in a region when the general descriptor and at least one of the ten type
//! descriptors match: each descriptor requires one of its possible lengths (when it lists any)
//! and its pattern to match at the start of the national number. A test compares both
//! verdicts on generated and random numbers in every calling code.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use phonenumber::PhoneNumber;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;

/// Whether `number` is valid, as `phonenumber::is_valid` decides.
pub fn is_valid(number: &PhoneNumber) -> bool {
    let code = number.country().code();
    let national = number.national().to_string();
    rules(code).is_some_and(|r| r.is_valid(&national))
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

/// A calling code's regions, in the library's order.
enum Code {
    /// One region (or a non-geographic entity): it decides.
    Single(Region),
    /// Several regions: the first that claims the number decides.
    Shared(Vec<(Option<Regex>, Region)>),
}

impl Code {
    fn build(code: u16) -> Option<Self> {
        let regions = DATABASE.region(&code)?;
        if let [only] = regions[..] {
            let meta = if only == "001" {
                DATABASE.by_code(&code)?.into_iter().next()?
            } else {
                DATABASE.by_id(only)?
            };
            return Some(Self::Single(Region::build(meta)?));
        }
        let mut shared = Vec::with_capacity(regions.len());
        for id in regions {
            let meta = DATABASE.by_id(id)?;
            let leading = match meta.leading_digits() {
                Some(p) => Some(anchored(p.as_str())?),
                None => None,
            };
            shared.push((leading, Region::build(meta)?));
        }
        Some(Self::Shared(shared))
    }

    fn is_valid(&self, national: &str) -> bool {
        match self {
            Self::Single(region) => region.has_type(national),
            Self::Shared(regions) => {
                for (leading, region) in regions {
                    match leading {
                        Some(l) if l.is_match(national) => return region.has_type(national),
                        None if region.has_type(national) => return true,
                        _ => {}
                    }
                }
                false
            }
        }
    }
}

/// A region's general descriptor and its type descriptors.
struct Region {
    general: Pattern,
    types: Vec<Pattern>,
}

impl Region {
    fn build(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let types = [
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
        ];
        Some(Self {
            general: Pattern::build(d.general())?,
            types: types
                .into_iter()
                .flatten()
                .map(Pattern::build)
                .collect::<Option<_>>()?,
        })
    }

    /// Whether the number has a type here (`number_type` is not `Unknown`).
    fn has_type(&self, national: &str) -> bool {
        self.general.matches(national) && self.types.iter().any(|t| t.matches(national))
    }
}

/// A descriptor: its possible lengths (none: any) and its pattern, anchored at the start.
struct Pattern {
    lengths: Vec<u16>,
    regex: Regex,
}

impl Pattern {
    fn build(d: &Descriptor) -> Option<Self> {
        Some(Self {
            lengths: d.possible_length().to_vec(),
            regex: anchored(d.national_number().as_str())?,
        })
    }

    fn matches(&self, national: &str) -> bool {
        let length_ok = self.lengths.is_empty()
            || u16::try_from(national.len()).is_ok_and(|n| self.lengths.contains(&n));
        length_ok && self.regex.is_match(national)
    }
}

/// `source` matching at the start only: the library's `find(..).start() == 0` (a leftmost
/// match starts at 0 exactly when some match does). Compiled as the library compiles its
/// metadata patterns: whitespace in them is layout, not pattern.
fn anchored(source: &str) -> Option<Regex> {
    regex::RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .ok()
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
