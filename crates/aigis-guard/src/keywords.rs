//! Overlapping keyword search with a compact Aho-Corasick DFA.
//!
//! The secrets keywords and the signatures' prefix literals are searched in overlapping mode
//! over every text. The `aho-corasick` crate's overlapping search costs about 19 instructions
//! per byte whatever the text (its search loop keeps its position in a state struct and checks
//! for special states byte by byte); this automaton is a plain table walk, one load per byte,
//! and a transition into a state where keywords end carries a flag in its top bit. The table is
//! padded to a power of two so that a transition index masked to it needs no bounds check
//! (the padding, up to half the table, is never read), and the same mask drops the flag. The
//! walk ORs the targets of eight bytes together and tests the flag once per eight bytes (55
//! instructions per eight bytes instead of 62 with a comparison per byte and a counter),
//! walking the eight again byte by byte, out of line, only when one of them ends keywords.
//!
//! It reports what `AhoCorasick::find_overlapping_iter` reports for the same keywords with
//! `MatchKind::Standard`, in the same order: at each end position, the keywords ending there
//! from the longest to the shortest (a state's own keyword, then those of its failure chain).

use std::collections::VecDeque;
use std::ops::Range;

/// Set in a transition of [`Keywords::table`] whose target is a state where keywords end.
const ENDS: usize = 1 << 31;

/// Texts of at least this many bytes are walked in lanes ([`Keywords::overlapping_in_lanes`]).
/// Measured against 4,096: 1 KB prompts take about 7% less time at the median for 1.8% more
/// instructions (the second lane re-walks the longest keyword's length, and the two chains of
/// table loads overlap).
const LANES_MIN_LEN: usize = 512;

/// Blocks of at least this many bytes are walked in four lanes, shorter ones in two. On 100 KB
/// documents the two keyword stages took 11-15% less time with four than with two; eight were
/// slower than four.
const LANES4_MIN_LEN: usize = 4096;

/// Bytes walked in lanes at a time: each lane's keywords wait for the lanes before, so a block
/// bounds how many are held (at most a few per byte of the block).
const LANE_BLOCK: usize = 256 << 10;

/// A full DFA over keywords: `table[state * stride + class]` is the next state (times
/// `stride`), with [`ENDS`] set when keywords end there.
#[derive(Debug, Clone)]
pub(crate) struct Keywords {
    /// Byte to column; 0 for bytes no keyword holds.
    classes: [u8; 256],
    stride: usize,
    /// Its length, a power of two, is at most [`ENDS`]: masked to it, an index loses the flag.
    table: Vec<u32>,
    /// Per state: the range of `outputs` holding the keywords that end there.
    ends: Vec<Range<u32>>,
    outputs: Vec<u32>,
    /// Per keyword: its length in bytes.
    lengths: Vec<usize>,
    /// The longest keyword's length.
    longest: usize,
}

impl Keywords {
    /// Compiles `keywords` (by index), ASCII case-insensitive when `ignore_case`. `None` when a
    /// keyword is empty or the table would have 2^32 entries or more.
    pub(crate) fn new(keywords: &[&[u8]], ignore_case: bool) -> Option<Self> {
        let fold = |b: u8| {
            if ignore_case {
                b.to_ascii_lowercase()
            } else {
                b
            }
        };
        if keywords.iter().any(|k| k.is_empty()) {
            return None;
        }
        // Columns: one per distinct (folded) keyword byte, 0 for the rest.
        let mut classes = [0u8; 256];
        let mut columns = 1usize;
        for b in 0..=255u8 {
            if fold(b) == b && keywords.iter().any(|k| k.iter().any(|&x| fold(x) == b)) {
                classes[usize::from(b)] = u8::try_from(columns).ok()?;
                columns += 1;
            }
        }
        for b in 0..=255u8 {
            classes[usize::from(b)] = classes[usize::from(fold(b))];
        }
        // The trie: `goto[state * columns + column]`, 0 meaning none (the root is never a
        // target). Each state's own keywords, in index order.
        let mut goto: Vec<u32> = vec![0; columns];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        for (id, k) in keywords.iter().enumerate() {
            let mut s = 0usize;
            for &b in *k {
                let at = s * columns + usize::from(classes[usize::from(b)]);
                s = if goto[at] == 0 {
                    let next = own.len();
                    goto[at] = u32::try_from(next).ok()?;
                    goto.extend(std::iter::repeat_n(0, columns));
                    own.push(Vec::new());
                    next
                } else {
                    goto[at] as usize
                };
            }
            own[s].push(u32::try_from(id).ok()?);
        }
        let states = own.len();
        u32::try_from(states.checked_mul(columns)?).ok()?;
        // Breadth first: failure links, full transitions and output lists (own keywords, then
        // the failure state's, which is shallower and so already complete).
        let mut delta = vec![0usize; states * columns];
        let mut fail = vec![0usize; states];
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); states];
        lists[0].clone_from(&own[0]);
        let mut queue = VecDeque::new();
        for c in 0..columns {
            let t = goto[c] as usize;
            delta[c] = t;
            if t != 0 {
                queue.push_back(t);
            }
        }
        while let Some(s) = queue.pop_front() {
            let mut list = own[s].clone();
            list.extend_from_slice(&lists[fail[s]]);
            lists[s] = list;
            for c in 0..columns {
                let t = goto[s * columns + c] as usize;
                if t == 0 {
                    delta[s * columns + c] = delta[fail[s] * columns + c];
                } else {
                    fail[t] = delta[fail[s] * columns + c];
                    delta[s * columns + c] = t;
                    queue.push_back(t);
                }
            }
        }
        let mut ends = Vec::with_capacity(states);
        let mut outputs = Vec::new();
        let mut table = Vec::with_capacity(states * columns);
        for s in 0..states {
            let start = u32::try_from(outputs.len()).ok()?;
            outputs.extend_from_slice(&lists[s]);
            ends.push(start..u32::try_from(outputs.len()).ok()?);
            for &t in &delta[s * columns..(s + 1) * columns] {
                let flag = if lists[t].is_empty() { 0 } else { ENDS };
                // Below 2^32: checked below.
                table.push(u32::try_from((t * columns) | flag).ok()?);
            }
        }
        // Padded to a power of two: a transition index masked to it needs no bounds check,
        // and loses the flag.
        table.resize(table.len().checked_next_power_of_two()?, 0);
        if table.len() > ENDS {
            return None;
        }
        let lengths: Vec<usize> = keywords.iter().map(|k| k.len()).collect();
        Some(Self {
            classes,
            stride: columns,
            table,
            ends,
            outputs,
            longest: lengths.iter().copied().max().unwrap_or(0),
            lengths,
        })
    }

    /// Bytes held by the automaton's tables.
    #[cfg(test)]
    pub(crate) fn memory_usage(&self) -> usize {
        4 * (self.table.len() + self.outputs.len())
            + 8 * (self.ends.len() + self.lengths.len())
            + 256
    }

    /// Calls `f` with the index and byte range of every keyword occurrence in `haystack`, in
    /// the order of `AhoCorasick::find_overlapping_iter` (see the module docs).
    pub(crate) fn overlapping(&self, haystack: &[u8], mut f: impl FnMut(usize, Range<usize>)) {
        if haystack.len() >= LANES_MIN_LEN {
            self.overlapping_in_blocks(haystack, LANE_BLOCK, &mut f);
        } else {
            self.overlapping_from(haystack, 0, 0, &mut f);
        }
    }

    /// [`Keywords::overlapping`] over blocks of `block` bytes, each walked in two or four lanes
    /// ([`Keywords::overlapping_in_lanes`]), the state carried from one block to the next.
    fn overlapping_in_blocks(
        &self,
        haystack: &[u8],
        block: usize,
        f: &mut impl FnMut(usize, Range<usize>),
    ) {
        let (mut at, mut state) = (0, 0);
        while at < haystack.len() {
            let end = at.saturating_add(block.max(1)).min(haystack.len());
            state = if end - at >= LANES4_MIN_LEN {
                self.overlapping_in_lanes::<4>(haystack, at..end, state, f)
            } else {
                self.overlapping_in_lanes::<2>(haystack, at..end, state, f)
            };
            at = end;
        }
    }

    /// [`Keywords::overlapping`] from byte `at` of `haystack`, in `state`.
    fn overlapping_from(
        &self,
        haystack: &[u8],
        mut at: usize,
        mut state: usize,
        f: &mut impl FnMut(usize, Range<usize>),
    ) {
        while let Some((end, next)) = self.next_match(haystack, at, state) {
            (at, state) = (end, next);
            self.report(state, end, f);
        }
    }

    /// Calls `f` with the keywords that end at `end`, where the walk is in `state`.
    fn report(&self, state: usize, end: usize, f: &mut impl FnMut(usize, Range<usize>)) {
        let ends = &self.ends[(state & !ENDS) / self.stride];
        for &id in &self.outputs[ends.start as usize..ends.end as usize] {
            let id = id as usize;
            f(id, end - self.lengths[id]..end);
        }
    }

    /// The keywords ending in `range` of `haystack`, walked from `state` at its start, as `N`
    /// walks in one loop over its `N` parts; returns the state at its end.
    ///
    /// One walk is a chain of dependent loads (a table lookup a byte, each waiting for the
    /// last), so the core mostly waits; independent chains keep it busy. Each walk after the
    /// first starts from the root `longest - 1` bytes before its part: a state stands for at
    /// most the last `longest` bytes read, so from the part's start on it is the state of a
    /// walk from the start, and it reports only keywords that end inside its part. Each walk's
    /// keywords are held and reported part by part, so the order is that of one walk; a block
    /// bounds how many are held.
    fn overlapping_in_lanes<const N: usize>(
        &self,
        haystack: &[u8],
        range: Range<usize>,
        state: usize,
        f: &mut impl FnMut(usize, Range<usize>),
    ) -> usize {
        let Some(mask) = self.table.len().checked_sub(1) else {
            return state;
        };
        let (table, classes) = (&self.table[..=mask], &self.classes);
        let part = |k: usize| range.start + range.len() * k / N;
        // Where each walk starts and the state it starts in: one that starts where the range
        // does (too short a part before it to warm up in) starts in `state`.
        let from: [usize; N] = std::array::from_fn(|k| {
            if k == 0 {
                range.start
            } else {
                part(k)
                    .saturating_sub(self.longest.saturating_sub(1))
                    .max(range.start)
            }
        });
        let mut states: [usize; N] =
            std::array::from_fn(|k| if from[k] == range.start { state } else { 0 });
        let lanes: [&[u8]; N] = std::array::from_fn(|k| &haystack[from[k]..part(k + 1)]);
        // Every walk holds the keywords that end inside its part (all of the first's do).
        let mut later: [Vec<(usize, Range<usize>)>; N] = std::array::from_fn(|_| Vec::new());
        let mut walk = |k: usize, bytes: &[u8], at: usize, state: usize| {
            let (part, held) = (part(k), &mut later[k]);
            self.walk_reporting(bytes, at, state, &mut |id, r: Range<usize>| {
                if r.end > part {
                    held.push((id, r));
                }
            })
        };
        // Eight bytes a turn in every walk, as far as the shortest walk goes.
        let turns = lanes.iter().map(|l| l.len() / 8).min().unwrap_or(0);
        let blocks: [&[[u8; 8]]; N] = std::array::from_fn(|k| &lanes[k].as_chunks().0[..turns]);
        for turn in 0..turns {
            let before = states;
            let mut seen = [0usize; N];
            for j in 0..8 {
                for ((state, seen), block) in states.iter_mut().zip(&mut seen).zip(blocks) {
                    *state = table
                        [(*state + usize::from(classes[usize::from(block[turn][j])])) & mask]
                        as usize;
                    *seen |= *state;
                }
            }
            for k in 0..N {
                if seen[k] & ENDS != 0 {
                    states[k] = walk(k, &blocks[k][turn], from[k] + 8 * turn, before[k]);
                }
            }
        }
        let done = 8 * turns;
        for k in 0..N {
            states[k] = walk(k, &lanes[k][done..], from[k] + done, states[k]);
        }
        for held in later {
            for (id, r) in held {
                f(id, r);
            }
        }
        states[N - 1]
    }

    /// Walks `bytes` (at offset `at` of the text) from `state`, reporting every keyword that
    /// ends in them; returns the state after them. Out of line, like [`Keywords::first_match`].
    #[inline(never)]
    fn walk_reporting(
        &self,
        bytes: &[u8],
        at: usize,
        mut state: usize,
        f: &mut impl FnMut(usize, Range<usize>),
    ) -> usize {
        let mask = self.table.len() - 1;
        for (j, &b) in bytes.iter().enumerate() {
            state = self.table[(state + usize::from(self.classes[usize::from(b)])) & mask] as usize;
            if state & ENDS != 0 {
                self.report(state, at + j + 1, f);
            }
        }
        state
    }

    /// Walks the table from `state` at byte `at` to the next state where keywords end: the
    /// end offset and that state (with [`ENDS`]). Kept apart from the caller's closure so the
    /// loop stays in registers (inlined into it, the loop spilled to the stack: 21
    /// instructions a byte).
    #[inline(never)]
    fn next_match(&self, haystack: &[u8], at: usize, state: usize) -> Option<(usize, usize)> {
        let mask = self.table.len().checked_sub(1)?;
        let (table, classes) = (self.table.get(..=mask)?, &self.classes);
        let mut state = state;
        // Eight bytes a turn (the inner loop is unrolled): one test of their targets ORed
        // together; the eight are walked again only when one of them ends keywords.
        // The offset is recomputed from what is left only on return: no counter in the loop.
        let mut rest = haystack.get(at..)?;
        while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
            let from = state;
            let mut seen = 0;
            for &b in chunk {
                state = table[(state + usize::from(classes[usize::from(b)])) & mask] as usize;
                seen |= state;
            }
            if seen & ENDS != 0 {
                return self.first_match(chunk, haystack.len() - rest.len(), from);
            }
            rest = tail;
        }
        self.first_match(rest, haystack.len() - rest.len(), state)
    }

    /// Walks `bytes` (at offset `at` of the text) byte by byte from `state` to the first state
    /// where keywords end. Out of line: inlined, the compiler kept all eight targets of a turn
    /// of [`Keywords::next_match`] live for it, and that loop spilled registers.
    #[inline(never)]
    fn first_match(&self, bytes: &[u8], at: usize, state: usize) -> Option<(usize, usize)> {
        let mask = self.table.len().checked_sub(1)?;
        let mut state = state;
        for (j, &b) in bytes.iter().enumerate() {
            let next = (state + usize::from(self.classes[usize::from(b)])) & mask;
            state = *self.table.get(next)? as usize;
            if state & ENDS != 0 {
                return Some((at + j + 1, state));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, MatchKind};
    use proptest::prelude::*;

    fn same(words: &[&str], ignore_case: bool, text: &str) -> Result<(), TestCaseError> {
        let bytes: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let k = Keywords::new(&bytes, ignore_case).unwrap();
        let mut got = Vec::new();
        k.overlapping(text.as_bytes(), |id, r| got.push((id, r)));
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(ignore_case)
            .match_kind(MatchKind::Standard)
            .build(words)
            .unwrap();
        let want: Vec<(usize, Range<usize>)> = ac
            .find_overlapping_iter(text)
            .map(|m| (m.pattern().as_usize(), m.range()))
            .collect();
        prop_assert_eq!(&got, &want, "{:?}", text);
        for block in [1, 7, 16, 61, text.len().max(1)] {
            got.clear();
            k.overlapping_in_blocks(text.as_bytes(), block, &mut |id, r| got.push((id, r)));
            prop_assert_eq!(&got, &want, "blocks of {}: {:?}", block, text);
            for (lanes, got) in [
                (2, in_lanes::<2>(&k, text, block)),
                (3, in_lanes::<3>(&k, text, block)),
                (4, in_lanes::<4>(&k, text, block)),
                (8, in_lanes::<8>(&k, text, block)),
            ] {
                prop_assert_eq!(
                    &got,
                    &want,
                    "{} lanes, blocks of {}: {:?}",
                    lanes,
                    block,
                    text
                );
            }
        }
        Ok(())
    }

    /// What `N` lanes find in `text` walked in blocks of `block` bytes.
    fn in_lanes<const N: usize>(
        k: &Keywords,
        text: &str,
        block: usize,
    ) -> Vec<(usize, Range<usize>)> {
        let (mut got, mut state) = (Vec::new(), 0);
        for at in (0..text.len()).step_by(block) {
            let end = (at + block).min(text.len());
            state = k.overlapping_in_lanes::<N>(text.as_bytes(), at..end, state, &mut |id, r| {
                got.push((id, r));
            });
        }
        got
    }

    #[test]
    fn finds_every_occurrence_longest_first() {
        same(
            &["he", "she", "his", "hers", "e"],
            false,
            "ushers shE hishers",
        )
        .unwrap();
        same(
            &["he", "she", "his", "hers", "e"],
            true,
            "usHers shE hisHERS",
        )
        .unwrap();
    }

    proptest! {
        #[test]
        fn same_as_aho_corasick_overlapping(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "ab", "b", "bcdefg", "cd", "de", "Key", "x", " ", "-----begin", "é", "\n",
                    "sk-", "SK", "password", "pass", "a", "ß",
                ]),
                0..80,
            ),
            ignore_case in any::<bool>(),
        ) {
            let words = [
                "ab", "bcdefg", "de", "key", "sk-", "SK", "-----BEGIN", "pass", "password",
                "é", "b", "cdef", "ab", "sk", "ss",
            ];
            same(&words, ignore_case, &parts.concat())?;
        }
    }
}
