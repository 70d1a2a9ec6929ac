//! The learned tier: logistic regression over hashed word and character n-grams.
//!
//! Features of a normalised text: word unigrams and bigrams, and the character 3-, 4- and
//! 5-grams of every word with boundary marks (so `ignore` also yields `^ig`, `ore$`, ...), each
//! hashed (FNV-1a) into 2^`bits` buckets and weighted 1/√n. A linear model over them is tiny
//! (the weights are 16-bit numbers, no training text), needs no runtime download, and scores a
//! 1 KB prompt in a few microseconds; char n-grams make it robust to the misspellings and
//! inflections signatures miss.
//!
//! [`train`] fits it by stochastic gradient descent on the log loss, with the lexical tier's
//! weights as a fixed offset (so the model learns what signatures miss), balanced class weights,
//! L2 regularisation and a fixed shuffling seed: the same data gives the same weights file.
//!
//! # Weights file (`model/injection.bin`)
//!
//! `AIGISNG1` (8 bytes), `bits` (u8), 3 zero bytes, `bias` (f32 LE), `scale` (f32 LE), then
//! 2^`bits` weights as i16 LE; a weight is `i16 * scale`.

// Counts (features per text, examples) stay far below 2^23, where f32 is exact.
#![allow(clippy::cast_precision_loss)]

use thiserror::Error;

const MAGIC: &[u8; 8] = b"AIGISNG1";
const HEADER: usize = 8 + 4 + 4 + 4;

/// A weights file that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("injection model weights: {0}")]
pub struct ModelError(&'static str);

/// The trained linear model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    bits: u8,
    bias: f32,
    weights: Vec<f32>,
}

impl Model {
    /// Reads a weights file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(ModelError("not an aigis n-gram model (bad magic)"));
        }
        let width = bytes[8];
        if !(10..=24).contains(&width) {
            return Err(ModelError("hash width out of range"));
        }
        let float = |at: usize| {
            f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let (bias, scale) = (float(12), float(16));
        let body = &bytes[HEADER..];
        if body.len() != 2 << width {
            return Err(ModelError("truncated or oversized weights"));
        }
        let weights = body
            .chunks_exact(2)
            .map(|w| f32::from(i16::from_le_bytes([w[0], w[1]])) * scale)
            .collect();
        Ok(Self {
            bits: width,
            bias,
            weights,
        })
    }

    /// Writes the weights file, quantising weights to 16 bits.
    pub fn to_bytes(&self) -> Vec<u8> {
        let max = self.weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 {
            max / f32::from(i16::MAX)
        } else {
            1.0
        };
        let mut out = Vec::with_capacity(HEADER + 2 * self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.bits, 0, 0, 0]);
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&scale.to_le_bytes());
        for w in &self.weights {
            #[allow(clippy::cast_possible_truncation)]
            let q = (w / scale).round().clamp(-32767.0, 32767.0) as i16;
            out.extend_from_slice(&q.to_le_bytes());
        }
        out
    }

    /// The model's logit for a normalised text (without the signatures' offset). Each distinct
    /// feature counts once, so repeating a sentence does not amplify it.
    pub fn logit(&self, text: &str) -> f32 {
        self.accumulate(|acc| features(text, self.bits, |i| acc.add(i)))
    }

    /// The highest of [`Model::logit`] over the windows `ranges` of `text` (byte ranges on
    /// character boundaries, in order), bit for bit: each block of consecutive windows is
    /// tokenised once, a word's hash and character grams are computed once per block, and each
    /// window then replays its features in the order [`Model::logit`] would find them.
    pub fn max_logit(&self, text: &str, ranges: &[std::ops::Range<usize>]) -> f32 {
        let mut best = f32::NEG_INFINITY;
        for block in ranges.chunks(BLOCK_WINDOWS) {
            let (Some(first), Some(last)) = (block.first(), block.last()) else {
                continue;
            };
            let base = first.start;
            let Some(slice) = text.get(base..last.end) else {
                continue;
            };
            let mut doc = Document::new(slice, self.bits);
            for r in block {
                let logit = self.accumulate(|acc| doc.features(r.start - base..r.end - base, acc));
                best = best.max(logit);
            }
        }
        best
    }

    /// Sums the weights of the distinct features `emit` passes to the accumulator, in order.
    fn accumulate(&self, emit: impl FnOnce(&mut Accumulator<'_>)) -> f32 {
        SCRATCH.with_borrow_mut(|Scratch { stamps, text }| {
            // Every bucket remembers the last text that used it: nothing to clear between
            // texts, except the whole table once every 65,535 texts.
            if stamps.len() != self.weights.len() {
                *stamps = vec![0; self.weights.len()];
                *text = 0;
            }
            *text = text.wrapping_add(1);
            if *text == 0 {
                stamps.fill(0);
                *text = 1;
            }
            let mut acc = Accumulator {
                weights: &self.weights,
                stamps,
                text: *text,
                sum: 0.0,
                distinct: 0,
            };
            emit(&mut acc);
            if acc.distinct == 0 {
                self.bias
            } else {
                self.bias + acc.sum / (acc.distinct as f32).sqrt()
            }
        })
    }
}

/// Windows tokenised together by [`Model::max_logit`]: bounds the memory of a block's tokens
/// and word table (about 96 KiB of text).
const BLOCK_WINDOWS: usize = 128;

/// The running sum of the weights of distinct features.
struct Accumulator<'a> {
    weights: &'a [f32],
    /// Per bucket, the last text that used it (see [`Scratch`]).
    stamps: &'a mut [u16],
    text: u16,
    sum: f32,
    distinct: usize,
}

impl Accumulator<'_> {
    #[inline]
    fn add(&mut self, i: u32) {
        let i = i as usize;
        if let Some(stamp) = self.stamps.get_mut(i)
            && *stamp != self.text
        {
            *stamp = self.text;
            self.distinct += 1;
            self.sum += self.weights.get(i).copied().unwrap_or(0.0);
        }
    }
}

/// Per-thread scratch space of [`Model::logit`], reused from text to text.
#[derive(Default)]
struct Scratch {
    /// Per bucket, the number of the last text whose features included it (2 bytes per
    /// bucket: 128 KiB for the built-in 2^16 buckets).
    stamps: Vec<u16>,
    /// The number of the text being scored, counted modulo 2^16 (0 is never used).
    text: u16,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

/// What an ASCII byte is to [`features`]: part of a word (alphanumeric or `'`), part of a
/// punctuation run (neither alphanumeric nor whitespace), or both (`'`).
#[allow(clippy::cast_possible_truncation)] // `b` stays under 128
const ASCII_ROLE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        let space = matches!(c, b' ' | b'\t'..=b'\r');
        table[b] =
            if alnum || c == b'\'' { WORD } else { 0 } | if alnum || space { 0 } else { PUNCT };
        b += 1;
    }
    table
};
const WORD: u8 = 1;
const PUNCT: u8 = 2;

/// The bucket of a 64-bit hash.
#[inline]
fn bucket_of(h: u64, bits: u8) -> u32 {
    // `bits` is at most 24, so the shifted hash fits.
    #[allow(clippy::cast_possible_truncation)]
    let b = (h >> (64 - u32::from(bits))) as u32;
    b
}

/// The hash of a word: FNV-1a of its bytes.
fn word_hash(word: &[u8]) -> u64 {
    fnv(FNV_OFFSET, word)
}

/// The bucket of the unigram of a word with hash `w`.
fn unigram(w: u64, bits: u8) -> u32 {
    bucket_of(fnv(w, b"w"), bits)
}

/// The bucket of the bigram of words with hashes `p` then `w`, `distance` words apart (0 for
/// neighbours).
#[inline]
fn bigram(p: u64, w: u64, distance: u8, bits: u8) -> u32 {
    bucket_of(fnv(p ^ w.rotate_left(17), &[b'b', distance]), bits)
}

/// The hash of a punctuation run.
fn run_hash(run: &[u8]) -> u64 {
    fnv(FNV_OFFSET ^ 0x5555, run)
}

/// Calls `f` with the buckets of the character 3-, 4- and 5-grams of `^word$`, in order: the
/// last five bytes live in a shift register, so each gram costs one multiply (Fibonacci
/// hashing) instead of a hash pass.
#[inline]
fn char_grams(word: &[u8], bits: u8, mut f: impl FnMut(u32)) {
    let gram = |register: u64, mask: u64, n: u64| {
        bucket_of(
            ((register & mask) | (n << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            bits,
        )
    };
    let (g3, g4, g5) = (0xFF_FFFF, 0xFFFF_FFFF, 0xFF_FFFF_FFFF);
    let mut register = u64::from(b'^');
    for (i, &b) in word.iter().chain(b"$").enumerate() {
        register = (register << 8) | u64::from(b);
        if i >= 1 {
            f(gram(register, g3, 3));
        }
        if i >= 2 {
            f(gram(register, g4, 4));
        }
        if i >= 3 {
            f(gram(register, g5, 5));
        }
    }
}

/// Walks `text` once: `word` gets every word (a run of alphanumeric characters and `'`) and
/// `run` every punctuation run (characters neither alphanumeric nor whitespace) of two bytes or
/// more, as byte ranges, each in order.
fn tokens(text: &str, mut word: impl FnMut(usize, usize), mut run: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let (mut word_start, mut run_start) = (None, None);
    let mut at = 0;
    while at <= bytes.len() {
        let (role, len) = match bytes.get(at) {
            None => (0, 1),
            Some(&b) if b.is_ascii() => (ASCII_ROLE[usize::from(b)], 1),
            Some(_) => text[at..].chars().next().map_or((0, 1), |c| {
                let role = if c.is_alphanumeric() {
                    WORD
                } else if c.is_whitespace() {
                    0
                } else {
                    PUNCT
                };
                (role, c.len_utf8())
            }),
        };
        match (word_start, role & WORD != 0) {
            (None, true) => word_start = Some(at),
            (Some(start), false) => {
                word(start, at);
                word_start = None;
            }
            _ => {}
        }
        match (run_start, role & PUNCT != 0) {
            (None, true) => run_start = Some(at),
            (Some(start), false) => {
                if at - start >= 2 {
                    run(start, at);
                }
                run_start = None;
            }
            _ => {}
        }
        at += len;
        // Bytes that change no state are skipped in a tight loop: letters and digits inside a
        // word, whitespace between tokens.
        let skip = match (word_start, run_start) {
            (Some(_), None) => WORD,
            (None, None) => 0,
            _ => continue,
        };
        while let Some(&b) = bytes.get(at) {
            if b >= 0x80 || ASCII_ROLE[usize::from(b)] != skip {
                break;
            }
            at += 1;
        }
    }
}

/// Calls `f` with the bucket of every distinct feature of `text` at least once, in the order
/// they first occur: the features of each word (a run of alphanumeric characters and `'`) in
/// order, then those of the punctuation runs (runs of characters neither alphanumeric nor
/// whitespace) of two bytes or more. One pass over the text; a repeated word only adds its
/// bigrams.
fn features(text: &str, bits: u8, mut f: impl FnMut(u32)) {
    let bytes = text.as_bytes();
    // The hashes of the last three words, for bigrams and skip-bigrams.
    let mut recent: [Option<u64>; 3] = [None; 3];
    let mut seen_words = Words::for_text(text.len());
    let mut runs: Vec<u64> = Vec::new();
    tokens(
        text,
        |start, end| {
            let word = &bytes[start..end];
            let w = word_hash(word);
            // A repeated word's unigram and character grams were all emitted with its first use.
            let (_, new) = seen_words.insert(w, word);
            if new {
                f(unigram(w, bits));
            }
            for (distance, p) in (0u8..).zip(recent) {
                if let Some(p) = p {
                    f(bigram(p, w, distance, bits));
                }
            }
            recent = [Some(w), recent[0], recent[1]];
            if new {
                char_grams(word, bits, &mut f);
            }
        },
        |start, end| runs.push(run_hash(&bytes[start..end])),
    );
    // Runs of punctuation carry structure (`<|`, `###`, `]]`).
    for run in runs {
        f(bucket_of(run, bits));
    }
}

/// A block of text tokenised once for [`Model::max_logit`]: its words (with an id per distinct
/// word), its punctuation runs, and per distinct word its hash, unigram and character grams.
struct Document<'t> {
    text: &'t str,
    bits: u8,
    /// Words in order: start, end, id.
    words: Vec<(usize, usize, u32)>,
    /// Punctuation runs of two bytes or more in order: start, end, bucket.
    runs: Vec<(usize, usize, u32)>,
    dict: Words<'t>,
    /// Per id: the word's hash, and where its buckets (unigram, then character grams) lie in
    /// `grams`.
    info: Vec<(u64, usize, usize)>,
    grams: Vec<u32>,
    /// Per id: the last window (counted from 1) that used the word.
    stamp: Vec<u32>,
    window: u32,
}

impl<'t> Document<'t> {
    fn new(text: &'t str, bits: u8) -> Self {
        let mut doc = Self {
            text,
            bits,
            words: Vec::with_capacity(text.len() / 5),
            runs: Vec::new(),
            dict: Words::for_text(text.len()),
            info: Vec::new(),
            grams: Vec::new(),
            stamp: Vec::new(),
            window: 0,
        };
        let mut words = std::mem::take(&mut doc.words);
        let mut runs = std::mem::take(&mut doc.runs);
        let bytes = text.as_bytes();
        tokens(
            text,
            |start, end| words.push((start, end, doc.id(start, end))),
            |start, end| runs.push((start, end, bucket_of(run_hash(&bytes[start..end]), bits))),
        );
        doc.words = words;
        doc.runs = runs;
        doc
    }

    /// The id of the word `text[start..end]`, computing its features when it is new.
    fn id(&mut self, start: usize, end: usize) -> u32 {
        let word = &self.text.as_bytes()[start..end];
        let w = word_hash(word);
        let (id, new) = self.dict.insert(w, word);
        if new {
            let from = self.grams.len();
            self.grams.push(unigram(w, self.bits));
            char_grams(word, self.bits, |g| self.grams.push(g));
            self.info.push((w, from, self.grams.len()));
            self.stamp.push(0);
        }
        id
    }

    /// Passes the features of the window `range` to `acc` in the order [`features`] finds
    /// them in `&text[range]`.
    fn features(&mut self, range: std::ops::Range<usize>, acc: &mut Accumulator<'_>) {
        self.window += 1;
        let (from, to) = (range.start, range.end);
        let first = self.words.partition_point(|&(_, end, _)| end <= from);
        let mut recent: [Option<u64>; 3] = [None; 3];
        let mut at = first;
        while let Some(&(start, end, id)) = self.words.get(at) {
            if start >= to {
                break;
            }
            at += 1;
            let id = if start < from || end > to {
                self.id(start.max(from), end.min(to))
            } else {
                id
            };
            let (w, g_from, g_to) = self.info[id as usize];
            let new = self.stamp[id as usize] != self.window;
            self.stamp[id as usize] = self.window;
            if new {
                acc.add(self.grams[g_from]);
            }
            for (distance, p) in (0u8..).zip(recent) {
                if let Some(p) = p {
                    acc.add(bigram(p, w, distance, self.bits));
                }
            }
            recent = [Some(w), recent[0], recent[1]];
            if new {
                for &g in &self.grams[g_from + 1..g_to] {
                    acc.add(g);
                }
            }
        }
        let first = self.runs.partition_point(|&(_, end, _)| end <= from);
        for &(start, end, bucket) in &self.runs[first..] {
            if start >= to {
                break;
            }
            let (s, e) = (start.max(from), end.min(to));
            if (s, e) == (start, end) {
                acc.add(bucket);
            } else if e - s >= 2 {
                acc.add(bucket_of(run_hash(&self.text.as_bytes()[s..e]), self.bits));
            }
        }
    }
}

/// The distinct words of one text: open addressing on their FNV hashes, compared byte for byte;
/// each gets an id, counted from 0 in the order they were added.
struct Words<'t> {
    slots: Vec<(u64, &'t [u8], u32)>,
    len: usize,
}

impl<'t> Words<'t> {
    fn for_text(bytes: usize) -> Self {
        Self {
            slots: vec![(0, &[][..], 0); (bytes / 4).clamp(16, 512).next_power_of_two()],
            len: 0,
        }
    }

    /// Adds `word` (not empty) with hash `hash`; returns its id, and whether it is new.
    fn insert(&mut self, hash: u64, word: &'t [u8]) -> (u32, bool) {
        if 2 * (self.len + 1) > self.slots.len() {
            let grown = vec![(0, &[][..], 0); 2 * self.slots.len()];
            let old = std::mem::replace(&mut self.slots, grown);
            for slot in old.into_iter().filter(|(_, w, _)| !w.is_empty()) {
                self.place(slot);
            }
        }
        let mask = self.slots.len() - 1;
        // The low bits of an FNV hash mix poorly: take the slot from the high ones.
        let mut at = (hash >> 40) as usize & mask;
        loop {
            let (h, w, id) = self.slots[at];
            if w.is_empty() {
                // Ids stay below the number of words of a text, far under 2^32.
                #[allow(clippy::cast_possible_truncation)]
                let id = self.len as u32;
                self.slots[at] = (hash, word, id);
                self.len += 1;
                return (id, true);
            }
            if h == hash && w == word {
                return (id, false);
            }
            at = (at + 1) & mask;
        }
    }

    /// Puts an existing entry back after the table grew.
    fn place(&mut self, slot: (u64, &'t [u8], u32)) {
        let mask = self.slots.len() - 1;
        let mut at = (slot.0 >> 40) as usize & mask;
        while !self.slots[at].1.is_empty() {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }
}

/// The distinct buckets of `text`'s features, sorted: what [`Model::logit`] sums over (for
/// trainers outside this module).
pub fn feature_buckets(text: &str, bits: u8) -> Vec<u32> {
    let mut idx = Vec::new();
    features(text, bits, |i| idx.push(i));
    idx.sort_unstable();
    idx.dedup();
    idx
}

impl Model {
    /// A model from its parts: `2^width` weights and a bias (for trainers outside this module).
    pub fn from_parts(width: u8, bias: f32, weights: Vec<f32>) -> Result<Self, ModelError> {
        if !(10..=24).contains(&width) {
            return Err(ModelError("hash width out of range"));
        }
        if weights.len() != 1 << width {
            return Err(ModelError("truncated or oversized weights"));
        }
        Ok(Self {
            bits: width,
            bias,
            weights,
        })
    }
}

/// One training example: normalised text, the signatures' offset for it, and its label.
#[derive(Debug, Clone)]
pub struct Example {
    /// Normalised text.
    pub text: String,
    /// Sum of the lexical tier's weights that fire on it.
    pub offset: f32,
    /// True for an injection or jailbreak.
    pub label: bool,
}

/// Settings of the stochastic trainer [`train`] (`aigis guard train --sgd`); the committed weights
/// come from the full-batch [`super::training::fit`] since round 4 (docs/guard.md).
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// log2 of the number of hash buckets.
    pub bits: u8,
    /// Passes over the data.
    pub epochs: u32,
    /// Initial learning rate.
    pub learning_rate: f32,
    /// L2 penalty per example.
    pub l2: f32,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            bits: 16,
            epochs: 20,
            learning_rate: 0.7,
            l2: 1e-6,
            seed: 0x5eed,
        }
    }
}

/// Fits a model to `examples` (see the module docs).
pub fn train(examples: &[Example], options: TrainOptions) -> Model {
    let encoded: Vec<(Vec<u32>, f32, f32)> = examples
        .iter()
        .map(|e| {
            let mut idx = Vec::new();
            features(&e.text, options.bits, |i| idx.push(i));
            idx.sort_unstable();
            idx.dedup();
            (idx, e.offset, if e.label { 1.0 } else { 0.0 })
        })
        .collect();
    let positives = examples.iter().filter(|e| e.label).count().max(1) as f32;
    let negatives = (examples.len() as f32 - positives).max(1.0);
    let class_weight = |y: f32| {
        if y > 0.5 {
            examples.len() as f32 / (2.0 * positives)
        } else {
            examples.len() as f32 / (2.0 * negatives)
        }
    };

    let mut weights = vec![0f32; 1 << options.bits];
    let mut bias = 0f32;
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    let mut rng = options.seed | 1;
    let mut step = 0f32;
    for _ in 0..options.epochs {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, usize::try_from(rng % (i as u64 + 1)).unwrap_or(0));
        }
        for &k in &order {
            let (idx, offset, label) = &encoded[k];
            let norm = 1.0 / (idx.len().max(1) as f32).sqrt();
            let logit =
                bias + offset + idx.iter().map(|&i| weights[i as usize]).sum::<f32>() * norm;
            let rate = options.learning_rate / (1.0 + step * 1e-5);
            step += 1.0;
            let gradient = (sigmoid(logit) - label) * class_weight(*label) * rate;
            bias -= gradient * 0.1;
            for &i in idx {
                let weight = &mut weights[i as usize];
                *weight -= gradient * norm + options.l2 * rate * *weight;
            }
        }
    }
    Model {
        bits: options.bits,
        bias,
        weights,
    }
}

/// The logistic function.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(text: &str, label: bool) -> Example {
        Example {
            text: text.into(),
            offset: 0.0,
            label,
        }
    }

    #[test]
    fn learns_and_round_trips_through_the_file_format() {
        let data: Vec<Example> = (0..50)
            .flat_map(|i| {
                [
                    example(&format!("please ignore everything number {i}"), true),
                    example(&format!("what is the weather number {i}"), false),
                ]
            })
            .collect();
        let model = train(
            &data,
            TrainOptions {
                bits: 12,
                epochs: 5,
                ..TrainOptions::default()
            },
        );
        assert!(model.logit("ignore everything") > 0.0);
        assert!(model.logit("the weather") < 0.0);
        let back = Model::from_bytes(&model.to_bytes()).unwrap();
        assert!((back.logit("ignore everything") - model.logit("ignore everything")).abs() < 0.01);
    }

    #[test]
    fn rejects_bad_files() {
        assert!(Model::from_bytes(b"nope").is_err());
        let mut bytes = train(
            &[example("a", true)],
            TrainOptions {
                bits: 10,
                epochs: 1,
                ..TrainOptions::default()
            },
        )
        .to_bytes();
        bytes.pop();
        assert_eq!(
            Model::from_bytes(&bytes),
            Err(ModelError("truncated or oversized weights"))
        );
    }
}
