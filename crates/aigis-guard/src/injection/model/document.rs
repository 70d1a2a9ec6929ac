//! A block of a long text tokenised once for [`Model::max_logit`], so its windows share the work.
//!
//! Each distinct word's bag (unigram and character grams) is summed once per block into an
//! integer contribution, and each word's bigram buckets with the three words before it are
//! computed once; a window then adds, per distinct word, one contribution, and per word its three
//! bigram buckets (distinct ones only). Words cut by a window's edges are different words for
//! that window: they are interned like any other, and the bigrams around them recomputed.

use super::{Accumulator, Model, Sink, Words, bigram, bucket_of, run_hash, tokens, word_hash};

/// A word of the block, where it lies, and its bigram buckets with the words before it.
#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    /// The id of the word (see [`Document::id`]).
    id: u32,
    /// The buckets of the bigrams with the previous, second and third previous word of the
    /// block (0 where the block has none; never used then).
    pairs: [u32; 3],
}

/// A distinct word: its hash, and its bag's contribution as [`Model::bag`] gives it (the scaled
/// weight sum in fixed point, and the feature count in fixed point).
#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    sum: i64,
    count: u64,
}

/// A block of text tokenised once: its words with their ids and bigram buckets, its punctuation
/// runs, and per distinct word (whole, or cut by a window's edge) its contribution.
pub(super) struct Document<'t, 'm> {
    text: &'t str,
    model: &'m Model,
    words: Vec<Token>,
    /// Punctuation runs of two bytes or more in order: start, end, bucket.
    runs: Vec<(usize, usize, u32)>,
    dict: Words<'t>,
    /// Per id.
    entries: Vec<Entry>,
    /// Per id: the last window (counted from 1) that used the word.
    stamp: Vec<u32>,
    window: u32,
}

impl<'t, 'm> Document<'t, 'm> {
    pub(super) fn new(text: &'t str, model: &'m Model) -> Self {
        let bits = model.bits;
        let mut doc = Self {
            text,
            model,
            words: Vec::with_capacity(text.len() / 5),
            runs: Vec::new(),
            dict: Words::for_text(text.len()),
            entries: Vec::new(),
            stamp: Vec::new(),
            window: 0,
        };
        let mut words = std::mem::take(&mut doc.words);
        let mut runs = std::mem::take(&mut doc.runs);
        let bytes = text.as_bytes();
        let mut recent = [0u64; 3];
        tokens(
            text,
            |start, end| {
                let id = doc.id(start, end);
                let w = doc.entries[id as usize].hash;
                let pairs = [
                    bigram(recent[0], w, 0, bits),
                    bigram(recent[1], w, 1, bits),
                    bigram(recent[2], w, 2, bits),
                ];
                recent = [w, recent[0], recent[1]];
                words.push(Token {
                    start,
                    end,
                    id,
                    pairs,
                });
            },
            |start, end| runs.push((start, end, bucket_of(run_hash(&bytes[start..end]), bits))),
        );
        doc.words = words;
        doc.runs = runs;
        doc
    }

    /// The id of the word `text[start..end]`, summing its bag when it is new.
    fn id(&mut self, start: usize, end: usize) -> u32 {
        let (id, new) = self.dict.insert(self.text.as_bytes(), start, end);
        if new {
            let word = &self.text.as_bytes()[start..end];
            let hash = word_hash(word);
            let (sum, count) = self.model.bag(word, hash);
            self.entries.push(Entry { hash, sum, count });
            self.stamp.push(0);
        }
        id
    }

    /// Passes the features of the window `range` to `acc`: those [`super::features`] finds in
    /// `&text[range]`.
    pub(super) fn features(&mut self, range: std::ops::Range<usize>, acc: &mut Accumulator<'_>) {
        self.window += 1;
        let (from, to) = (range.start, range.end);
        let first = self.words.partition_point(|t| t.end <= from);
        let bits = self.model.bits;
        // The first word may be cut by the window's start: the precomputed bigrams of a word
        // hold only when the three words before it are whole words of the window.
        let whole_from =
            first + 3 + usize::from(self.words.get(first).is_some_and(|t| t.start < from));
        let mut recent: [Option<u64>; 3] = [None; 3];
        let mut at = first;
        while let Some(&token) = self.words.get(at) {
            if token.start >= to {
                break;
            }
            let cut = token.start < from || token.end > to;
            let id = if cut {
                self.id(token.start.max(from), token.end.min(to))
            } else {
                token.id
            };
            let entry = self.entries[id as usize];
            if self.stamp[id as usize] != self.window {
                self.stamp[id as usize] = self.window;
                acc.add_contribution(entry.sum, entry.count);
            }
            if !cut && at >= whole_from {
                for p in token.pairs {
                    acc.pair(p);
                }
            } else {
                for (distance, p) in (0u8..).zip(recent) {
                    if let Some(p) = p {
                        acc.pair(bigram(p, entry.hash, distance, bits));
                    }
                }
            }
            recent = [Some(entry.hash), recent[0], recent[1]];
            at += 1;
        }
        let first = self.runs.partition_point(|&(_, end, _)| end <= from);
        for &(start, end, bucket) in &self.runs[first..] {
            if start >= to {
                break;
            }
            let (s, e) = (start.max(from), end.min(to));
            if (s, e) == (start, end) {
                acc.pair(bucket);
            } else if e - s >= 2 {
                acc.pair(bucket_of(run_hash(&self.text.as_bytes()[s..e]), bits));
            }
        }
    }
}
