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
        SEEN.with_borrow_mut(|seen| {
            seen.resize(1 << self.bits.saturating_sub(6), 0);
            let mut sum = 0f32;
            let mut set = Vec::with_capacity(text.len() * 2);
            features(text, self.bits, |i| {
                let (word, bit) = ((i >> 6) as usize, 1u64 << (i & 63));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    set.push(i);
                    sum += self.weights[i as usize];
                }
            });
            for i in &set {
                seen[(*i >> 6) as usize] = 0;
            }
            if set.is_empty() {
                self.bias
            } else {
                self.bias + sum / (set.len() as f32).sqrt()
            }
        })
    }
}

thread_local! {
    /// A bitset of the features seen in the text being scored, cleared after each text.
    static SEEN: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

/// Calls `f` with the bucket of every feature of `text`.
fn features(text: &str, bits: u8, mut f: impl FnMut(u32)) {
    let bucket = |h: u64| u32::try_from(h >> (64 - u32::from(bits))).unwrap_or(0);
    // The hashes of the last three words, for bigrams and skip-bigrams.
    let mut recent: [Option<u64>; 3] = [None; 3];
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        let w = fnv(FNV_OFFSET, word.as_bytes());
        f(bucket(fnv(w, b"w")));
        for (distance, p) in (0u8..).zip(recent) {
            if let Some(p) = p {
                f(bucket(fnv(p ^ w.rotate_left(17), &[b'b', distance])));
            }
        }
        recent = [Some(w), recent[0], recent[1]];
        // Character 3-, 4- and 5-grams of `^word$`: the last five bytes live in a shift
        // register, so each gram costs one multiply (Fibonacci hashing) instead of a hash pass.
        let mut register = u64::from(b'^');
        for (i, &b) in word.as_bytes().iter().chain(b"$").enumerate() {
            register = (register << 8) | u64::from(b);
            for n in 3..=5usize {
                if i + 2 >= n {
                    let gram = register & ((1u64 << (8 * n)) - 1);
                    f(bucket(
                        (gram | ((n as u64) << 56)).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ));
                }
            }
        }
    }
    // Runs of punctuation carry structure (`<|`, `###`, `]]`).
    for run in text
        .split(|c: char| c.is_alphanumeric() || c.is_whitespace())
        .filter(|r| r.len() >= 2)
    {
        f(bucket(fnv(FNV_OFFSET ^ 0x5555, run.as_bytes())));
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

/// Training settings; the defaults are the ones the committed weights were trained with.
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
            learning_rate: 0.5,
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
