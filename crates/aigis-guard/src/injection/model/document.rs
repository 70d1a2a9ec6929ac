//! A block of a long text tokenised once for [`Model::max_logit`], so its windows share the work.
//!
//! Each distinct word's bag (unigram and character grams) is summed once per block into an
//! integer contribution, and each word's bigram buckets with the three words before it are
//! computed once; a window then adds, per distinct word, one contribution, and per word its three
//! bigram buckets (distinct ones only). Words cut by a window's edges are different words for
//! that window: they are interned like any other, and the bigrams around them recomputed.

use super::{
    Accumulator, FNV_PRIME, FRACTION, Model, Sink, Words, bigram, bucket_of, run_hash, tokens,
    word_hash,
};

/// Adds the words of `text` to `words` (id and bigrams not filled in yet) and returns its
/// punctuation runs with their buckets. Out of line, so the tokeniser's loop has the registers
/// to itself.
#[inline(never)]
fn tokenise(text: &str, bits: u8, words: &mut Vec<Token>) -> Vec<(usize, usize, u32)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    tokens(
        text,
        |start, end| {
            words.push(Token {
                start,
                end,
                id: 0,
                pairs: [0; 3],
            });
        },
        |start, end| runs.push((start, end, bucket_of(run_hash(&bytes[start..end]), bits))),
    );
    runs
}

/// Gives the leading words of `words` that `dict` has their ids; returns how many it had. Out
/// of line: the loop keeps the table in registers, and nothing of a word is kept for the
/// insertion that follows it.
#[inline(never)]
fn find_known(dict: &Words<'_>, text: &[u8], words: &mut [Token]) -> usize {
    for (n, token) in words.iter_mut().enumerate() {
        let Some(id) = dict.find(text, token.start, token.end) else {
            return n;
        };
        token.id = id;
    }
    words.len()
}

/// Fills in the bigram buckets of `words` (ids filled in) with the words before them.
#[inline(never)]
fn pair_up(words: &mut [Token], entries: &[Entry], bits: u8) {
    let mut recent = [0u64; 3];
    for token in words {
        let w = entries[token.id as usize].hash;
        // [`bigram`] with its shared part computed once: FNV-1a of `b'b'` then the distance,
        // from `p ^ w.rotate_left(17)`.
        let tail = w.rotate_left(17) ^ u64::from(b'b');
        let pair = |p: u64, distance: u8| {
            bucket_of(
                (((p ^ tail).wrapping_mul(FNV_PRIME)) ^ u64::from(distance))
                    .wrapping_mul(FNV_PRIME),
                bits,
            )
        };
        token.pairs = [pair(recent[0], 0), pair(recent[1], 1), pair(recent[2], 2)];
        recent = [w, recent[0], recent[1]];
    }
}

/// Adds the features of `middle`, whole words of the window `window` whose three words before
/// are whole words of it too: each word's contribution once, and its precomputed bigrams.
///
/// Out of line, so the loop has the registers to itself. With the built-in 2^16 buckets the
/// stamps and weights are arrays a bucket (below 2^16) indexes without a bounds check, and the
/// bigrams' sums are kept apart and scaled once at the end (integers: the same sums as
/// [`Sink::pair`] one by one).
#[inline(never)]
fn add_whole_words(
    middle: &[Token],
    entries: &mut [Entry],
    window: u32,
    acc: &mut Accumulator<'_>,
) {
    let (stamps, weights, text) = acc.pair_tables();
    if let (Ok(stamps), Ok(weights)) = (
        <&mut [u16; 1 << 16]>::try_from(stamps),
        <&[i16; 1 << 16]>::try_from(weights),
    ) {
        let (mut sum, mut count, mut pair_sum, mut pairs) = (0i64, 0u64, 0i64, 0u64);
        for token in middle {
            let entry = &mut entries[token.id as usize];
            if entry.stamp != window {
                entry.stamp = window;
                sum += entry.sum;
                count += entry.count;
            }
            for p in token.pairs {
                let p = p as usize & 0xFFFF;
                if stamps[p] != text {
                    stamps[p] = text;
                    pairs += 1;
                    pair_sum += i64::from(weights[p]);
                }
            }
        }
        acc.add_contribution(sum + (pair_sum << FRACTION), count + (pairs << FRACTION));
    } else {
        for token in middle {
            entries[token.id as usize].add_once(window, acc);
            for p in token.pairs {
                acc.pair(p);
            }
        }
    }
}

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
    /// The last window (counted from 1) that used the word.
    stamp: u32,
}

impl Entry {
    /// Adds the word's contribution to `acc` unless `window` already has it.
    #[inline]
    fn add_once(&mut self, window: u32, acc: &mut Accumulator<'_>) {
        if self.stamp != window {
            self.stamp = window;
            acc.add_contribution(self.sum, self.count);
        }
    }
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
            window: 0,
        };
        let mut words = std::mem::take(&mut doc.words);
        // Three passes, each a loop whose state fits in registers: the tokeniser only records
        // where the words are, then each word gets its id, then its bigram buckets. (As one
        // loop, interning and bigrams spilled a score of values to the stack per word.)
        doc.runs = tokenise(text, bits, &mut words);
        doc.intern(&mut words);
        pair_up(&mut words, &doc.entries, bits);
        doc.words = words;
        doc
    }

    /// Gives every word of `words` its id. Most words are repeats: they are looked up in a
    /// loop that only reads the table, left for each new word.
    #[inline(never)]
    fn intern(&mut self, words: &mut [Token]) {
        let mut at = 0;
        while at < words.len() {
            at += find_known(&self.dict, self.text.as_bytes(), &mut words[at..]);
            if let Some(token) = words.get_mut(at) {
                token.id = self.id(token.start, token.end);
                at += 1;
            }
        }
    }

    /// The id of the word `text[start..end]`, summing its bag when it is new. Inlined, with the
    /// bag out of line: called for every word of the block (as a call, its register saves and
    /// restores were a fifth of it).
    #[expect(
        clippy::inline_always,
        reason = "measured: a plain hint leaves it a call in the word loop of `Document::new`"
    )]
    #[inline(always)]
    fn id(&mut self, start: usize, end: usize) -> u32 {
        let (id, new) = self.dict.insert(self.text.as_bytes(), start, end);
        if new {
            self.add_entry(&self.text.as_bytes()[start..end]);
        }
        id
    }

    /// Adds the entry of a new word.
    #[inline(never)]
    fn add_entry(&mut self, word: &[u8]) {
        let hash = word_hash(word);
        let (sum, count) = self.model.bag(word, hash);
        self.entries.push(Entry {
            hash,
            sum,
            count,
            stamp: 0,
        });
    }

    /// Passes the features of the window `range` to `acc`: those [`super::features`] finds in
    /// `&text[range]`.
    ///
    /// Only the words at the window's edges need care: the first three words (their bigrams
    /// with words before the window are not the window's) and words cut by an edge. The words
    /// in between take their precomputed bigrams in a tight loop. (Inlined into the caller, the
    /// accumulator's sums stay in registers.)
    #[inline]
    pub(super) fn features(&mut self, range: std::ops::Range<usize>, acc: &mut Accumulator<'_>) {
        self.window += 1;
        let (from, to) = (range.start, range.end);
        // The words `first..last` overlap the window; all but the first and last are whole.
        let first = self.words.partition_point(|t| t.end <= from);
        let last = self.words.partition_point(|t| t.start < to);
        // The first word may be cut by the window's start: the precomputed bigrams of a word
        // hold only when the three words before it are whole words of the window.
        let whole_from =
            first + 3 + usize::from(self.words.get(first).is_some_and(|t| t.start < from));
        let whole_to = last - usize::from(last > first && self.words[last - 1].end > to);
        let mut recent: [Option<u64>; 3] = [None; 3];
        for at in first..whole_from.min(last) {
            self.edge_word(at, &range, &mut recent, acc);
        }
        if let Some(middle) = self.words.get(whole_from..whole_to) {
            add_whole_words(middle, &mut self.entries, self.window, acc);
            // The tail's bigrams need the last three words before it.
            for t in &middle[middle.len().saturating_sub(3)..] {
                recent = [Some(self.entries[t.id as usize].hash), recent[0], recent[1]];
            }
        }
        for at in whole_from.max(whole_to)..last {
            self.edge_word(at, &range, &mut recent, acc);
        }
        let bits = self.model.bits;
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

    /// Passes the features of the word `at` at a window's edge: its bag (of its part inside the
    /// window when cut) and its bigrams with the `recent` words of the window, computed afresh.
    fn edge_word(
        &mut self,
        at: usize,
        window: &std::ops::Range<usize>,
        recent: &mut [Option<u64>; 3],
        acc: &mut Accumulator<'_>,
    ) {
        let token = self.words[at];
        let id = if token.start < window.start || token.end > window.end {
            self.id(token.start.max(window.start), token.end.min(window.end))
        } else {
            token.id
        };
        let entry = &mut self.entries[id as usize];
        entry.add_once(self.window, acc);
        let hash = entry.hash;
        for (distance, p) in (0u8..).zip(*recent) {
            if let Some(p) = p {
                acc.pair(bigram(p, hash, distance, self.model.bits));
            }
        }
        *recent = [Some(hash), recent[0], recent[1]];
    }
}
