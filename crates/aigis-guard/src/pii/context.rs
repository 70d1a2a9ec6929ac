//! Context words: one Aho-Corasick pass finds every context word of every entity; a candidate
//! then asks whether a word for its entity lies within [`WINDOW`] bytes of its span.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

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
        Self {
            automaton,
            masks: words.into_iter().map(|(_, m)| m).collect(),
        }
    }

    /// All whole-word context hits in `text`, sorted by start.
    pub fn find(&self, text: &str) -> Hits {
        let mut hits = Vec::new();
        let Some(ac) = &self.automaton else {
            return Hits(hits);
        };
        let bytes = text.as_bytes();
        for m in ac.find_iter(text) {
            let before = m.start().checked_sub(1).and_then(|i| bytes.get(i));
            let after = bytes.get(m.end());
            let is_word = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
            if !is_word(before) && !is_word(after) {
                let mask = self.masks.get(m.pattern().as_usize()).copied().unwrap_or(0);
                hits.push((m.start(), m.end(), mask));
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
