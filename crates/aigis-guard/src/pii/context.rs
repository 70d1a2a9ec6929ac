//! Context words: one Aho-Corasick pass finds every context word of every entity near the
//! candidates; a candidate then asks whether a word for its entity lies within [`WINDOW`] bytes
//! of its span.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};

use super::entity::{ENTITIES, EntityKind, NEGATIVE_CONTEXT};

/// Bytes on either side of a candidate searched for context words.
pub const WINDOW: usize = 48;

/// Bit set over [`EntityKind`]s, plus [`NEGATIVE`] for the negative words.
type Mask = u64;

/// Mask bit of the negative context words ("order number", "tracking", ...).
const NEGATIVE: Mask = 1 << 63;

fn bit(kind: EntityKind) -> Mask {
    1 << (kind as u32)
}

/// Compiled context words of all entities.
pub struct ContextWords {
    automaton: Option<AhoCorasick>,
    masks: Vec<Mask>,
    /// The bytes of the words in either case: a match holds no other byte.
    alphabet: [bool; 256],
    /// Length of the longest word in bytes.
    longest: usize,
}

impl ContextWords {
    /// Build the automaton from the entity table.
    pub fn new() -> Self {
        let mut words: Vec<(String, Mask)> = Vec::new();
        let mut add = |w: &str, m: Mask| {
            let w = w.to_ascii_lowercase();
            match words.iter_mut().find(|(x, _)| *x == w) {
                Some((_, mask)) => *mask |= m,
                None => words.push((w, m)),
            }
        };
        for e in ENTITIES {
            for w in e.context {
                add(w, bit(e.kind));
            }
        }
        for w in NEGATIVE_CONTEXT {
            add(w, NEGATIVE);
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            // A full DFA: one table lookup per byte (the default, a contiguous NFA, cost about
            // 45 instructions per byte of a document).
            .kind(Some(AhoCorasickKind::DFA))
            .build(words.iter().map(|(w, _)| w.as_str()))
            .ok();
        let mut alphabet = [false; 256];
        for b in words.iter().flat_map(|(w, _)| w.bytes()) {
            alphabet[usize::from(b.to_ascii_lowercase())] = true;
            alphabet[usize::from(b.to_ascii_uppercase())] = true;
        }
        Self {
            automaton,
            longest: words.iter().map(|(w, _)| w.len()).max().unwrap_or(0),
            masks: words.into_iter().map(|(_, m)| m).collect(),
            alphabet,
        }
    }

    /// The whole-word context hits in `text` that [`Hits::positive`] and [`Hits::negative`] can
    /// see from `spans` (at least those; sorted by start).
    ///
    /// The automaton only runs near the spans, yet finds exactly the hits of a pass over the
    /// whole text there: a search (re)starts only after a byte that no word holds, where no match
    /// of the whole-text pass can straddle, so the leftmost-longest matches from there on are the
    /// same; or where the previous match ended, or at the start of the next match (which a
    /// search from there finds again). Each byte is scanned at most twice.
    pub fn find(&self, text: &str, spans: impl Iterator<Item = Range<usize>>) -> Hits {
        let mut hits = Vec::new();
        let Some(ac) = &self.automaton else {
            return Hits(hits);
        };
        let bytes = text.as_bytes();
        // The hits a span can see lie within `reach` bytes of it.
        let reach = WINDOW + self.longest;
        let mut near: Vec<(usize, usize)> = spans
            .map(|s| (s.start.saturating_sub(reach), s.end.saturating_add(WINDOW)))
            .collect();
        near.sort_unstable();
        // Where the whole-text pass is known to be between matches.
        let mut resume = 0;
        let mut i = 0;
        while i < near.len() {
            let (from, mut to) = near[i];
            i += 1;
            while i < near.len() && near[i].0 <= to {
                to = to.max(near[i].1);
                i += 1;
            }
            // Scanning back no further than `resume` keeps the whole walk linear.
            let from = from.clamp(resume, bytes.len());
            let restart = bytes[resume..from]
                .iter()
                .rposition(|&b| !self.alphabet[usize::from(b)])
                .map_or(resume, |at| resume + at + 1);
            let input = Input::new(bytes).span(restart..bytes.len());
            let mut exhausted = true;
            for m in ac.find_iter(input) {
                if m.start() > to {
                    // The next match of the whole-text pass: a search from its start finds it
                    // again.
                    resume = m.start();
                    exhausted = false;
                    break;
                }
                resume = m.end();
                let before = m.start().checked_sub(1).and_then(|i| bytes.get(i));
                let after = bytes.get(m.end());
                let is_word = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
                if !is_word(before) && !is_word(after) {
                    let mask = self.masks.get(m.pattern().as_usize()).copied().unwrap_or(0);
                    hits.push((m.start(), m.end(), mask));
                }
            }
            if exhausted {
                break;
            }
        }
        Hits(hits)
    }
}

/// Context words found in one text: `(start, end, mask)` sorted by start.
pub struct Hits(Vec<(usize, usize, Mask)>);

impl Hits {
    fn any_near(&self, span: &std::ops::Range<usize>, want: Mask) -> bool {
        let lo = span.start.saturating_sub(WINDOW);
        let hi = span.end.saturating_add(WINDOW);
        // Words are short, so a word ending at or after `lo` starts after `lo - 64`.
        let first = self.0.partition_point(|&(s, _, _)| s + 64 < lo);
        self.0[first..]
            .iter()
            .take_while(|&&(s, _, _)| s <= hi)
            .any(|&(s, e, m)| {
                m & want != 0 && e >= lo && s <= hi && (e <= span.start || s >= span.end)
            })
    }

    /// A context word of `kind` is within the window of `span`.
    pub fn positive(&self, kind: EntityKind, span: &std::ops::Range<usize>) -> bool {
        self.any_near(span, bit(kind))
    }

    /// A negative context word is within the window of `span`.
    pub fn negative(&self, span: &std::ops::Range<usize>) -> bool {
        self.any_near(span, NEGATIVE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hits_near_spans_are_the_whole_text_hits(
            words in proptest::collection::vec(
                prop_oneof![
                    Just("phone"), Just("tel"), Just("order number"), Just("order no"),
                    Just("ssn"), Just("date of birth"), Just("card"), Just("iban"), Just("x"),
                    Just(" "), Just(", "), Just("\n"), Just("-"), Just("42"), Just("é"),
                ],
                0..80,
            ),
            spans in proptest::collection::vec((0usize..400, 0usize..20), 0..6),
        ) {
            let context = ContextWords::new();
            let text = words.concat();
            let whole = context.find(&text, std::iter::once(0..text.len()));
            let spans: Vec<Range<usize>> = spans.into_iter().map(|(s, n)| s..s + n).collect();
            let near = context.find(&text, spans.iter().cloned());
            let seen = |&(s, e, _): &(usize, usize, Mask)| {
                spans.iter().any(|span| e + WINDOW >= span.start && s <= span.end + WINDOW)
            };
            for hit in whole.0.iter().filter(|h| seen(h)) {
                prop_assert!(near.0.contains(hit), "{hit:?} missing in {text:?}");
            }
            for hit in &near.0 {
                prop_assert!(whole.0.contains(hit), "{hit:?} not a whole-text hit in {text:?}");
            }
            prop_assert!(near.0.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }
}
