//! The distinct words of a text, each with an id, found by their bytes alone.
//!
//! A word is looked up by its first eight bytes read as one number (its *head*): no byte of a
//! word is 0 (words are letters, digits, `'` and UTF-8 sequences), so the zero-padded head of a
//! word of at most eight bytes is the word itself, and two such words are equal exactly when
//! their heads are. Longer words also compare their lengths and their last eight bytes (the
//! whole word up to sixteen bytes), and longer ones their bytes. A repeated word (most
//! words of a long text) thus costs one 8-byte load, a multiply and a compare, not a hash pass
//! over its bytes and a `memcmp`; the model's FNV hash is computed once per distinct word.

/// An occupied or empty (`word` empty) slot of the table.
#[derive(Clone, Copy)]
struct Slot<'t> {
    head: u64,
    /// The last eight bytes of a word longer than eight bytes (0 for others).
    tail: u64,
    word: &'t [u8],
    id: u32,
    /// The slot hash (see [`key`]), kept for moving the slot when the table grows.
    hash: u32,
}

const EMPTY: Slot<'static> = Slot {
    head: 0,
    tail: 0,
    word: &[],
    id: 0,
    hash: 0,
};

/// The distinct words of one text: open addressing on a hash of their heads (and, for words
/// longer than eight bytes, of their last eight bytes and length); each gets an id, counted
/// from 0 in the order they were added.
///
/// The hash multiplies by an odd number drawn once per process and takes the product's top
/// bits (multiply-shift hashing): a text cannot be written to make its words collide, as it
/// could with a fixed multiplier or the product's middle bits (with those, 7- and 8-byte words
/// sharing their first six bytes all fell into one chain, quadratic to insert). The slot order
/// never shows: ids follow the order words were added.
pub(super) struct Words<'t> {
    slots: Vec<Slot<'t>>,
    len: usize,
    multiplier: u64,
}

/// The process's hash multiplier (odd), from the standard library's randomly seeded hasher.
fn multiplier() -> u64 {
    static MULTIPLIER: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        use std::hash::{BuildHasher as _, Hasher as _};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1
    });
    *MULTIPLIER
}

/// The slot of `hash` in a table of `len` slots (a power of two): the hash's top bits.
fn slot_of(hash: u32, len: usize) -> usize {
    ((u64::from(hash) * len as u64) >> 32) as usize
}

impl<'t> Words<'t> {
    /// An empty table sized for a text of `bytes` bytes.
    pub(super) fn for_text(bytes: usize) -> Self {
        Self {
            slots: vec![EMPTY; (bytes / 4).clamp(16, 512).next_power_of_two()],
            len: 0,
            multiplier: multiplier(),
        }
    }

    /// Adds the word `text[start..end]` (not empty); returns its id, and whether it is new.
    /// Inlined, with the rare growth kept out of line: called for every word of a text (as a
    /// call, its register saves and restores cost a quarter of it).
    #[expect(
        clippy::inline_always,
        reason = "measured: a plain hint leaves it a call in `Document::new`"
    )]
    #[inline(always)]
    pub(super) fn insert(&mut self, text: &'t [u8], start: usize, end: usize) -> (u32, bool) {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let word = &text[start..end];
        let Key { head, tail, hash } = key(text, start, end, self.multiplier);
        let mask = self.slots.len() - 1;
        let mut at = slot_of(hash, self.slots.len());
        loop {
            let slot = self.slots[at];
            if slot.word.is_empty() {
                // Ids stay below the number of words of a text, far under 2^32.
                #[allow(clippy::cast_possible_truncation)]
                let id = self.len as u32;
                self.slots[at] = Slot {
                    head,
                    tail,
                    word,
                    id,
                    hash,
                };
                self.len += 1;
                return (id, true);
            }
            // Equal heads are equal words up to eight bytes (see the module docs).
            if slot.head == head
                && slot.word.len() == word.len()
                && (word.len() <= 8 || slot.word == word)
            {
                return (slot.id, false);
            }
            at = (at + 1) & mask;
        }
    }

    /// The id of the word `text[start..end]` (not empty) if the table has it and it is at
    /// most sixteen bytes long (`None` says to [`Words::insert`] it). Reads the table only and
    /// calls nothing, so a caller's loop of lookups keeps the table in registers.
    #[inline]
    pub(super) fn find(&self, text: &[u8], start: usize, end: usize) -> Option<u32> {
        let Key { head, tail, hash } = key(text, start, end, self.multiplier);
        let len = end - start;
        let mask = self.slots.len() - 1;
        let mut at = slot_of(hash, self.slots.len());
        loop {
            let slot = self.slots.get(at)?;
            // The first and the last eight bytes of words of equal length up to sixteen bytes
            // are the whole words. A head is never 0 (a word has a byte, none of them 0): an
            // empty slot never matches.
            if slot.head == head && slot.tail == tail && slot.word.len() == len {
                return (len <= 16).then_some(slot.id);
            }
            if slot.word.is_empty() {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    /// Doubles the table.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let grown = vec![EMPTY; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, grown);
        for slot in old.into_iter().filter(|s| !s.word.is_empty()) {
            self.place(slot);
        }
    }

    /// Puts an existing slot back after the table grew.
    fn place(&mut self, slot: Slot<'t>) {
        let mask = self.slots.len() - 1;
        let mut at = slot_of(slot.hash, self.slots.len());
        while !self.slots[at].word.is_empty() {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }
}

/// A word's [`key`].
struct Key {
    head: u64,
    tail: u64,
    hash: u32,
}

/// The head of the word `text[start..end]` (its first eight bytes, zero-padded, as a
/// little-endian number), its tail (the last eight bytes of a longer word, else 0) and its slot
/// hash: the head, and for a longer word its tail and length, mixed by a multiply by
/// `multiplier` (the high bits are the well-mixed ones).
#[inline]
fn key(text: &[u8], start: usize, end: usize, multiplier: u64) -> Key {
    let len = end - start;
    let eight = |at: usize| {
        text.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|b| u64::from_le_bytes(*b))
    };
    let head = if len >= 8 {
        eight(start).unwrap_or(0)
    } else {
        // Near the end of the text the eight bytes from `start` are not all there.
        let bytes = eight(start).unwrap_or_else(|| {
            text[start..end]
                .iter()
                .rev()
                .fold(0, |h, &b| (h << 8) | u64::from(b))
        });
        bytes & ((1 << (8 * len)) - 1)
    };
    let (tail, mixed) = if len > 8 {
        let tail = eight(end - 8).unwrap_or(0);
        (tail, head ^ tail.rotate_left(29) ^ len as u64)
    } else {
        (0, head)
    };
    #[allow(clippy::cast_possible_truncation)] // the high 32 bits
    let hash = (mixed.wrapping_mul(multiplier) >> 32) as u32;
    Key { head, tail, hash }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn words_sharing_their_first_six_bytes_spread_over_the_table() {
        // 1,024 eight-byte words that differ only in their last two bytes: with the product's
        // middle bits as the slot they all shared one (a chain quadratic to fill).
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEF";
        let mut text = Vec::new();
        for &a in alphabet {
            for &b in alphabet {
                text.extend_from_slice(b"abcdef");
                text.extend_from_slice(&[a, b, b' ']);
            }
        }
        let slots: std::collections::HashSet<usize> = text
            .chunks(9)
            .enumerate()
            .map(|(i, _)| slot_of(key(&text, 9 * i, 9 * i + 8, multiplier()).hash, 4096))
            .collect();
        // A good spread gives about 900 (1,024 keys in 4,096 slots); the multiplier is random
        // per process, and some gave as few as 364 here. The collapse this guards against
        // gives one.
        assert!(slots.len() > 200, "{} distinct slots of 4096", slots.len());
    }

    #[test]
    fn ids_follow_the_bytes_of_words() {
        // Short and long words, words sharing their first eight bytes, a word at the very end
        // of the text (fewer than eight bytes left), multi-byte characters, enough words to
        // grow the table.
        let mut text = String::from("international internationally internationalisation ");
        for i in 0..200 {
            write!(text, "w{i} é{i}ü {i} ").unwrap();
        }
        text.push_str("international x é9ü w7 intern");
        let bytes = text.as_bytes();
        let mut words = Words::for_text(16);
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        for piece in text.split(' ') {
            let end = start + piece.len();
            if !piece.is_empty() {
                let word = &bytes[start..end];
                let expected = seen.iter().position(|w| *w == word);
                let (id, new) = words.insert(bytes, start, end);
                assert_eq!(new, expected.is_none(), "{piece}");
                assert_eq!(id as usize, expected.unwrap_or(seen.len()), "{piece}");
                if new {
                    seen.push(word);
                }
            }
            start = end + 1;
        }
    }

    proptest::proptest! {
        /// `find` against the ids `insert` gave: it knows every word it says it knows, by the
        /// right id, and every known word of up to sixteen bytes. Words share first and last
        /// bytes and lengths around eight and sixteen, and one may end the text.
        #[test]
        fn find_agrees_with_insert(
            pieces in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["", "a", "abcdefgh", "abcdefg", "é"]),
                    proptest::sample::select(vec!["", "x", "12345678", "yz", "ü"]),
                    proptest::sample::select(vec!["", "q", "abcdefgh", "ijklmnopq"]),
                ),
                1..120,
            )
        ) {
            let words: Vec<String> = pieces
                .iter()
                .map(|(a, b, c)| format!("{a}{b}{c}"))
                .filter(|w| !w.is_empty())
                .collect();
            let text = words.join(" ");
            let bytes = text.as_bytes();
            let mut table = Words::for_text(16);
            let mut seen: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for word in &words {
                let end = start + word.len();
                let expected = seen.iter().position(|w| *w == &bytes[start..end]);
                let found = table.find(bytes, start, end);
                if let Some(id) = found {
                    proptest::prop_assert_eq!(Some(id as usize), expected, "{}", word);
                } else {
                    proptest::prop_assert!(expected.is_none() || word.len() > 16, "{}", word);
                }
                let (id, new) = table.insert(bytes, start, end);
                proptest::prop_assert_eq!(id as usize, expected.unwrap_or(seen.len()));
                if new {
                    seen.push(&bytes[start..end]);
                }
                start = end + 1;
            }
        }
    }
}
