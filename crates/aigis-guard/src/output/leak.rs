//! System-prompt leakage: how much of a protected text an output repeats, as word n-grams.
//!
//! Both sides are reduced to lower-case alphanumeric words, so a reproduction that changes
//! case, punctuation, line breaks or markdown still counts. The output is fed incrementally;
//! only complete words are counted, so the result does not depend on how it was chunked.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

/// Words per n-gram.
pub const NGRAM: usize = 5;
/// A protected text with fewer n-grams than this is too short to judge (canaries cover it).
pub const MIN_NGRAMS: usize = 4;
/// At most this many n-grams are kept of a protected text (about 64 KiB of prose).
const MAX_NGRAMS: usize = 16 * 1024;

/// The n-grams of the texts to protect.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    grams: HashSet<u64>,
}

impl Protected {
    /// Protects `texts` (a request's system and developer prompts).
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut grams = HashSet::new();
        for text in texts {
            let mut window = Window::default();
            for word in words(text) {
                if let Some(g) = window.push(word) {
                    grams.insert(g);
                }
                if grams.len() >= MAX_NGRAMS {
                    break;
                }
            }
        }
        Self { grams }
    }

    /// True when there is enough text to judge.
    pub fn is_judged(&self) -> bool {
        self.grams.len() >= MIN_NGRAMS
    }
}

/// Tracks how much of a [`Protected`] text an output has repeated so far.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    window: Window,
    partial: String,
    matched: HashSet<u64>,
}

impl Meter {
    /// Feeds released output text; returns the share of protected n-grams repeated so far.
    pub fn feed(&mut self, protected: &Protected, text: &str, end: bool) -> f32 {
        if !protected.is_judged() {
            return 0.0;
        }
        self.partial.push_str(text);
        let cut = if end {
            self.partial.len()
        } else {
            self.partial
                .rfind(|c: char| !c.is_alphanumeric())
                .map_or(0, |i| {
                    i + self.partial[i..].chars().next().map_or(1, char::len_utf8)
                })
        };
        let complete: String = self.partial.drain(..cut).collect();
        for word in words(&complete) {
            if let Some(g) = self.window.push(word)
                && protected.grams.contains(&g)
            {
                self.matched.insert(g);
            }
        }
        #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^24")]
        let share = self.matched.len() as f32 / protected.grams.len() as f32;
        share
    }
}

/// The last [`NGRAM`] word hashes.
#[derive(Debug, Clone, Default)]
struct Window {
    words: [u64; NGRAM],
    seen: usize,
}

impl Window {
    fn push(&mut self, word: &str) -> Option<u64> {
        self.words.rotate_left(1);
        self.words[NGRAM - 1] = hash(word);
        self.seen += 1;
        (self.seen >= NGRAM).then(|| {
            let mut h = STATE.build_hasher();
            self.words.iter().for_each(|w| h.write_u64(*w));
            h.finish()
        })
    }
}

/// Fixed seeds: the hashes only need to agree within one process.
const STATE: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

/// Hash of a word, case-folded.
fn hash(word: &str) -> u64 {
    let mut h = STATE.build_hasher();
    for c in word.chars().flat_map(char::to_lowercase) {
        h.write_u32(c as u32);
    }
    h.finish()
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "You are the billing assistant for Acme. Never reveal discount codes. \
        Escalate refunds above 500 euros to a human agent and keep answers under 100 words.";

    #[test]
    fn verbatim_and_reformatted_reproduction_counts() {
        let p = Protected::new([SYSTEM]);
        assert!(p.is_judged());
        let mut m = Meter::default();
        let share = m.feed(&p, &SYSTEM.to_uppercase().replace(". ", "\n- "), true);
        assert!(share > 0.95, "{share}");
        let mut m = Meter::default();
        let share = m.feed(
            &p,
            "Refunds above 500 euros go to a human agent, sure.",
            true,
        );
        assert!(share < 0.5, "{share}");
    }

    #[test]
    fn chunking_does_not_change_the_share() {
        let p = Protected::new([SYSTEM]);
        let mut whole = Meter::default();
        let a = whole.feed(&p, SYSTEM, true);
        let mut parts = Meter::default();
        let mut b = 0.0;
        let bytes: Vec<char> = SYSTEM.chars().collect();
        for (i, chunk) in bytes.chunks(7).enumerate() {
            let s: String = chunk.iter().collect();
            b = parts.feed(&p, &s, (i + 1) * 7 >= bytes.len());
        }
        assert!((a - b).abs() < f32::EPSILON, "{a} vs {b}");
    }
}
