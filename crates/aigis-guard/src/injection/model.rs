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
        SCRATCH.with_borrow_mut(|Scratch { seen, touched }| {
            seen.resize(1 << self.bits.saturating_sub(6), 0);
            // A small bitset is cleared whole after each text; a large one word by word.
            let small = seen.len() <= SMALL_BITSET;
            let (mut sum, mut distinct) = (0f32, 0usize);
            features(text, self.bits, |i| {
                let (word, bit) = ((i >> 6) as usize, 1u64 << (i & 63));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    distinct += 1;
                    sum += self.weights[i as usize];
                    if !small {
                        touched.push(word);
                    }
                }
            });
            if small {
                seen.fill(0);
            } else {
                for word in touched.drain(..) {
                    seen[word] = 0;
                }
            }
            if distinct == 0 {
                self.bias
            } else {
                self.bias + sum / (distinct as f32).sqrt()
            }
        })
    }
}

/// Bitsets of up to this many words (2^18 buckets, 32 KiB) are cleared whole.
const SMALL_BITSET: usize = 4096;

/// Per-thread scratch space of [`Model::logit`], reused from text to text.
#[derive(Default)]
struct Scratch {
    /// A bitset of the features seen in the text being scored, cleared after each text.
    seen: Vec<u64>,
    /// For a large bitset, the words set in it.
    touched: Vec<usize>,
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

/// Calls `f` with the bucket of every distinct feature of `text` at least once, in the order
/// they first occur: the features of each word (a run of alphanumeric characters and `'`) in
/// order, then those of the punctuation runs (runs of characters neither alphanumeric nor
/// whitespace) of two bytes or more. One pass over the text; a repeated word only adds its
/// bigrams.
fn features<'t>(text: &'t str, bits: u8, mut f: impl FnMut(u32)) {
    let shift = 64 - u32::from(bits);
    // `bits` is at most 24, so the shifted hash fits.
    #[allow(clippy::cast_possible_truncation)]
    let bucket = |h: u64| (h >> shift) as u32;
    // The hashes of the last three words, for bigrams and skip-bigrams.
    let mut recent: [Option<u64>; 3] = [None; 3];
    let mut seen_words = Words::for_text(text.len());
    let mut word = |word: &'t [u8]| {
        let w = fnv(FNV_OFFSET, word);
        // A repeated word's unigram and character grams were all emitted with its first use.
        let new = seen_words.insert(w, word);
        if new {
            f(bucket(fnv(w, b"w")));
        }
        for (distance, p) in (0u8..).zip(recent) {
            if let Some(p) = p {
                f(bucket(fnv(p ^ w.rotate_left(17), &[b'b', distance])));
            }
        }
        recent = [Some(w), recent[0], recent[1]];
        if !new {
            return;
        }
        // Character 3-, 4- and 5-grams of `^word$`: the last five bytes live in a shift
        // register, so each gram costs one multiply (Fibonacci hashing) instead of a hash pass.
        let gram = |register: u64, mask: u64, n: u64| {
            bucket(((register & mask) | (n << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15))
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
    };
    let bytes = text.as_bytes();
    let mut runs: Vec<u64> = Vec::new();
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
                word(&bytes[start..at]);
                word_start = None;
            }
            _ => {}
        }
        match (run_start, role & PUNCT != 0) {
            (None, true) => run_start = Some(at),
            (Some(start), false) => {
                if at - start >= 2 {
                    runs.push(fnv(FNV_OFFSET ^ 0x5555, &bytes[start..at]));
                }
                run_start = None;
            }
            _ => {}
        }
        at += len;
    }
    // Runs of punctuation carry structure (`<|`, `###`, `]]`).
    for run in runs {
        f(bucket(run));
    }
}

/// The distinct words of one text: open addressing on their FNV hashes, compared byte for byte.
struct Words<'t> {
    slots: Vec<(u64, &'t [u8])>,
    len: usize,
}

impl<'t> Words<'t> {
    fn for_text(bytes: usize) -> Self {
        Self {
            slots: vec![(0, &[][..]); (bytes / 4).clamp(16, 512).next_power_of_two()],
            len: 0,
        }
    }

    /// Adds `word` (not empty) with hash `hash`; false when it was there already.
    fn insert(&mut self, hash: u64, word: &'t [u8]) -> bool {
        if 2 * (self.len + 1) > self.slots.len() {
            let grown = vec![(0, &[][..]); 2 * self.slots.len()];
            let old = std::mem::replace(&mut self.slots, grown);
            self.len = 0;
            for (h, w) in old.into_iter().filter(|(_, w)| !w.is_empty()) {
                self.insert(h, w);
            }
        }
        let mask = self.slots.len() - 1;
        // The low bits of an FNV hash mix poorly: take the slot from the high ones.
        let mut at = (hash >> 40) as usize & mask;
        loop {
            let (h, w) = self.slots[at];
            if w.is_empty() {
                self.slots[at] = (hash, word);
                self.len += 1;
                return true;
            }
            if h == hash && w == word {
                return false;
            }
            at = (at + 1) & mask;
        }
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
